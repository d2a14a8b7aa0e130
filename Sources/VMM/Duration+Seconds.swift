extension Duration {
    /// For APIs that take seconds as a Double (condition deadlines, milliseconds in progress records).
    var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) * 1e-18
    }
}
