/// One token bucket of a rate limiter (CH's TokenBucketConfig): `size` tokens refilled every `refill_time` ms.
public struct TokenBucketConfig: Codable, Sendable, Equatable {
    public var size: UInt64
    public var one_time_burst: UInt64?
    public var refill_time: UInt64

    public init(size: UInt64, one_time_burst: UInt64? = nil, refill_time: UInt64) {
        self.size = size
        self.one_time_burst = one_time_burst
        self.refill_time = refill_time
    }

    enum CodingKeys: String, CodingKey { case size, one_time_burst, refill_time }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(size, forKey: .size)
        try c.encodeNullable(one_time_burst, forKey: .one_time_burst)
        try c.encode(refill_time, forKey: .refill_time)
    }
}

/// Bandwidth and operations limits of a disk or net device (CH's RateLimiterConfig). Unset buckets are
/// written as `null`, and unknown fields are an error, as in CH.
public struct RateLimiterConfig: Codable, Sendable, Equatable {
    public var bandwidth: TokenBucketConfig?
    public var ops: TokenBucketConfig?

    public init(bandwidth: TokenBucketConfig? = nil, ops: TokenBucketConfig? = nil) {
        self.bandwidth = bandwidth
        self.ops = ops
    }

    enum CodingKeys: String, CodingKey { case bandwidth, ops }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(["bandwidth", "ops"])
        let c = try decoder.container(keyedBy: CodingKeys.self)
        bandwidth = try c.decodeIfPresent(TokenBucketConfig.self, forKey: .bandwidth)
        ops = try c.decodeIfPresent(TokenBucketConfig.self, forKey: .ops)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeNullable(bandwidth, forKey: .bandwidth)
        try c.encodeNullable(ops, forKey: .ops)
    }

    /// The CLI options that describe a limiter inline (`--disk`, `--net`, `--rate-limit-group`).
    static let options = ["bw_size", "bw_one_time_burst", "bw_refill_time",
                          "ops_size", "ops_one_time_burst", "ops_refill_time"]

    /// The limiter described by `bw_*`/`ops_*` options, or nil when neither bucket is complete
    /// (CH ignores a bucket whose size or refill time is zero or missing).
    static func parse(_ p: OptionParser) throws -> RateLimiterConfig? {
        func bucket(_ prefix: String) throws -> TokenBucketConfig? {
            let size: UInt64 = try p.integer("\(prefix)_size") ?? 0
            let refill: UInt64 = try p.integer("\(prefix)_refill_time") ?? 0
            guard size != 0, refill != 0 else { return nil }
            return TokenBucketConfig(size: size, one_time_burst: try p.integer("\(prefix)_one_time_burst") ?? 0,
                                     refill_time: refill)
        }
        let limiter = RateLimiterConfig(bandwidth: try bucket("bw"), ops: try bucket("ops"))
        return limiter.bandwidth == nil && limiter.ops == nil ? nil : limiter
    }
}

/// A named limiter that several disks share (`--rate-limit-group`, VmConfig.rate_limit_groups).
public struct RateLimiterGroupConfig: Codable, Sendable, Equatable {
    public var id: String
    public var rate_limiter_config: RateLimiterConfig

    public init(id: String, rate_limiter_config: RateLimiterConfig) {
        self.id = id
        self.rate_limiter_config = rate_limiter_config
    }

    enum CodingKeys: String, CodingKey { case id, rate_limiter_config }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(.id, default: "")
        rate_limiter_config = try c.decode(.rate_limiter_config, default: RateLimiterConfig())
    }

    /// `--rate-limit-group bw_size=…,bw_refill_time=…,ops_size=…,ops_refill_time=…,id=…`.
    public static func parse(_ input: String) throws -> RateLimiterGroupConfig {
        let p = try OptionParser(flag: "--rate-limit-group", input: input, known: RateLimiterConfig.options + ["id"])
        return RateLimiterGroupConfig(id: p.string("id") ?? "",
                                      rate_limiter_config: try RateLimiterConfig.parse(p) ?? RateLimiterConfig())
    }
}
