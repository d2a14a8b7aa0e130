/// A UTC calendar date and time of day, converted to and from seconds since 1970 with the
/// proleptic Gregorian calendar (days counted in 400-year eras, so no tables and no time zones).
struct CivilTime: Equatable {
    var year: Int
    var month: Int    // 1...12
    var day: Int      // 1...31
    var hour: Int
    var minute: Int
    var second: Int

    init(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
        (self.year, self.month, self.day) = (year, month, day)
        (self.hour, self.minute, self.second) = (hour, minute, second)
    }

    init(epochSeconds: Int64) {
        let days = Self.floorDiv(epochSeconds, 86_400)
        let secondOfDay = Int(epochSeconds - days * 86_400)
        (year, month, day) = Self.civil(fromDays: days)
        hour = secondOfDay / 3600
        minute = secondOfDay / 60 % 60
        second = secondOfDay % 60
    }

    /// Seconds since 1970-01-01T00:00:00Z; out-of-range fields simply carry (day 0 is the last day
    /// of the previous month), which is what a guest writing odd values gets.
    var epochSeconds: Int64 {
        let days = Self.days(year: year, month: min(max(month, 1), 12), day: day)
        return days * 86_400 + Int64(hour * 3600 + minute * 60 + second)
    }

    /// 0 = Sunday.
    var weekday: Int {
        let days = Self.days(year: year, month: month, day: day)
        return Int(Self.floorMod(days + 4, 7))  // 1970-01-01 was a Thursday
    }

    static func days(year: Int, month: Int, day: Int) -> Int64 {
        // Count from March so that the leap day is the last day of the (shifted) year.
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = floorDiv(y, 400)
        let yearOfEra = y - era * 400
        let shiftedMonth = Int64(month > 2 ? month - 3 : month + 9)
        let dayOfYear = (153 * shiftedMonth + 2) / 5 + Int64(day) - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func civil(fromDays days: Int64) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = floorDiv(z, 146_097)
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (Int(year), Int(month), Int(day))
    }

    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        a >= 0 ? a / b : (a - b + 1) / b
    }

    private static func floorMod(_ a: Int64, _ b: Int64) -> Int64 {
        a - floorDiv(a, b) * b
    }
}
