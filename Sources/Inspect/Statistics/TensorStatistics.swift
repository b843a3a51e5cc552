import Formats
import Quantize
import QPKCore

/// Descriptive statistics of one tensor, computed from its `Float` view.
///
/// Conventions (each matches numpy on `x = a[np.isfinite(a)]` in float64, `a` being the tensor's
/// values as float32):
/// - `min`, `max`, `mean`, `std`, `absmax`, `l2Norm`, `kurtosis` and the percentiles cover the
///   **finite** values only; NaN and ±Inf are counted apart (numpy's nan-aware functions, extended
///   to infinities). They are `nil` when there is no finite value.
/// - `std` is the population standard deviation (`np.std`, ddof = 0).
/// - `kurtosis` is Fisher's excess kurtosis, m4/m2² − 3, the biased estimator
///   (`scipy.stats.kurtosis` defaults: fisher=True, bias=True); `nil` when the variance is 0.
/// - `beyond3Sigma`/`beyond6Sigma` count finite values with |x − mean| > 3·std (6·std), strictly.
/// - `p1`, `p50`, `p99` are exact, with numpy's default 'linear' interpolation
///   (`np.percentile(x, [1, 50, 99])`); see ``OrderStatistics``.
/// - `subnormalCount` counts non-zero finite values below the smallest normal magnitude of the
///   tensor's **own** dtype (f16: 2⁻¹⁴, bf16/f32: 2⁻¹²⁶, F8_E4M3: 2⁻⁶, …; integers: none).
/// - The histogram has equal-width bins over [min, max] of the finite values, the last bin closed
///   (`np.histogram(x, bins, range=(min, max))`; a constant tensor gets the range min ± 0.5).
///
/// The values are read three times: moments and a coarse histogram of order keys, then the σ
/// counts and the user's histogram, then the percentiles' own bins (``OrderStatistics``); memory
/// stays at one chunk per core beyond the tensor itself.
public struct TensorStatistics: Sendable, Codable, Equatable {
    /// All elements, finite or not.
    public var count: Int
    public var min: Double?
    public var max: Double?
    public var mean: Double?
    public var std: Double?
    public var absmax: Double?
    public var l2Norm: Double?
    public var kurtosis: Double?
    public var p1: Double?
    public var p50: Double?
    public var p99: Double?
    public var nanCount: Int
    public var positiveInfinityCount: Int
    public var negativeInfinityCount: Int
    public var zeroCount: Int
    public var subnormalCount: Int
    public var beyond3Sigma: Int
    public var beyond6Sigma: Int
    public var histogram: Histogram?

    /// Equal-width bin counts over `[lower, upper]`.
    public struct Histogram: Sendable, Codable, Equatable {
        public var lower: Double
        public var upper: Double
        public var counts: [Int]

        public init(lower: Double, upper: Double, counts: [Int]) {
            self.lower = lower
            self.upper = upper
            self.counts = counts
        }
    }

    enum CodingKeys: String, CodingKey {
        case count, min, max, mean, std, absmax, kurtosis, p1, p50, p99, histogram
        case l2Norm = "l2_norm"
        case nanCount = "nan"
        case positiveInfinityCount = "pos_inf"
        case negativeInfinityCount = "neg_inf"
        case zeroCount = "zeros"
        case subnormalCount = "subnormals"
        case beyond3Sigma = "beyond_3sigma"
        case beyond6Sigma = "beyond_6sigma"
    }

    /// Writes every key, with `null` for absent values (the schema never drops keys).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(count, forKey: .count)
        try c.encode(min, forKey: .min)
        try c.encode(max, forKey: .max)
        try c.encode(mean, forKey: .mean)
        try c.encode(std, forKey: .std)
        try c.encode(absmax, forKey: .absmax)
        try c.encode(l2Norm, forKey: .l2Norm)
        try c.encode(kurtosis, forKey: .kurtosis)
        try c.encode(p1, forKey: .p1)
        try c.encode(p50, forKey: .p50)
        try c.encode(p99, forKey: .p99)
        try c.encode(nanCount, forKey: .nanCount)
        try c.encode(positiveInfinityCount, forKey: .positiveInfinityCount)
        try c.encode(negativeInfinityCount, forKey: .negativeInfinityCount)
        try c.encode(zeroCount, forKey: .zeroCount)
        try c.encode(subnormalCount, forKey: .subnormalCount)
        try c.encode(beyond3Sigma, forKey: .beyond3Sigma)
        try c.encode(beyond6Sigma, forKey: .beyond6Sigma)
        try c.encode(histogram, forKey: .histogram)
    }

    /// The number of finite values.
    public var finiteCount: Int { count - nanCount - positiveInfinityCount - negativeInfinityCount }

    /// The largest histogram the statistics will build (larger requests are clamped).
    public static let maxHistogramBins = 1 << 16

    /// Computes the statistics of `values`.
    /// - Parameters:
    ///   - dtype: the dtype the values came from; it sets the subnormal threshold.
    ///   - histogramBins: bins of the histogram to return, 0 for none (at most ``maxHistogramBins``).
    public static func compute(_ values: FloatValues, dtype: DType = .f32, histogramBins: Int = 0) throws -> TensorStatistics {
        let histogramBins = Swift.min(Swift.max(histogramBins, 0), maxHistogramBins)
        let threshold = dtype.smallestNormalMagnitude
        let coarse = SharedCounts(count: OrderStatistics.bins)
        let partials = try Parallel.mapChunks(count: values.count) { range in
            values.withChunk(range) { chunk in
                var moments = MomentAccumulator()
                moments.add(chunk, subnormalBelow: threshold)
                withUnsafeTemporaryAllocation(of: UInt32.self, capacity: OrderStatistics.bins) { counts in
                    counts.initialize(repeating: 0)
                    OrderStatistics.addCoarseCounts(chunk, to: counts)
                    coarse.add(UnsafeBufferPointer(counts))
                }
                return moments
            }
        }
        var moments = MomentAccumulator()
        for p in partials { moments.merge(p) }

        var stats = TensorStatistics(
            count: values.count, nanCount: moments.nanCount,
            positiveInfinityCount: moments.positiveInfinityCount,
            negativeInfinityCount: moments.negativeInfinityCount,
            zeroCount: moments.zeroCount, subnormalCount: moments.subnormalCount,
            beyond3Sigma: 0, beyond6Sigma: 0)
        let n = moments.count
        guard n > 0 else { return stats }
        let lower = Double(moments.minimum), upper = Double(moments.maximum)
        let mean = moments.mean
        let variance = moments.m2 / Double(n)
        let std = variance.squareRoot()
        stats.min = lower
        stats.max = upper
        stats.mean = mean
        stats.std = std
        stats.absmax = Swift.max(abs(lower), abs(upper))
        stats.l2Norm = (moments.m2 + Double(n) * mean * mean).squareRoot()
        stats.kurtosis = variance > 0 ? (moments.m4 / Double(n)) / (variance * variance) - 3 : nil

        let userGrid = histogramBins > 0 ? BinGrid(lower: lower, upper: upper, bins: histogramBins) : nil
        let userBins = histogramBins > 0 ? histogramBins : 0
        let three = DeviationBounds(mean: mean, limit: 3 * std), six = DeviationBounds(mean: mean, limit: 6 * std)
        let distributions = try Parallel.mapChunks(count: values.count) { range in
            values.withChunk(range) { chunk in
                var d = DistributionAccumulator(userBins: userBins)
                d.add(chunk, three: three, six: six, userGrid: userGrid)
                return d
            }
        }
        var distribution = DistributionAccumulator(userBins: userBins)
        for d in distributions { distribution.merge(d) }
        stats.beyond3Sigma = distribution.beyond3Sigma
        stats.beyond6Sigma = distribution.beyond6Sigma
        if let grid = userGrid {
            stats.histogram = Histogram(lower: grid.lower, upper: grid.upper, counts: distribution.user)
        }

        // numpy 'linear': h = (n − 1)·p/100, value = x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋]).
        let percents = [1.0, 50.0, 99.0]
        var ranks = Set<Int>()
        for p in percents {
            let h = Double(n - 1) * p / 100
            let k = Int(h.rounded(.down))
            ranks.insert(k)
            ranks.insert(Swift.min(k + 1, n - 1))
        }
        let order = try OrderStatistics.select(ranks: Array(ranks).sorted(), in: values, coarse: coarse.counts)
        let results = percents.map { p -> Double? in
            let h = Double(n - 1) * p / 100
            let k = Int(h.rounded(.down))
            guard let a = order[k], let b = order[Swift.min(k + 1, n - 1)] else { return nil }
            return a + (h - Double(k)) * (b - a)
        }
        (stats.p1, stats.p50, stats.p99) = (results[0], results[1], results[2])
        values.releaseResidentPages()
        return stats
    }

    /// Computes the statistics of `values` (a convenience for in-memory arrays).
    public static func compute(_ values: [Float], dtype: DType = .f32, histogramBins: Int = 0) throws -> TensorStatistics {
        try compute(FloatValues(values), dtype: dtype, histogramBins: histogramBins)
    }

    /// Computes the statistics of one tensor of `reader`, decoding it chunk by chunk (dense) or
    /// dequantizing it once (quantized).
    public static func compute(reader: any CheckpointReader, tensor: TensorInfo, histogramBins: Int = 0) throws -> TensorStatistics {
        let storage = try reader.storage(of: tensor)
        return try InspectError.naming(reader.url.path, tensor.name) {
            try compute(FloatValues(storage: storage, info: tensor), dtype: tensor.dtype, histogramBins: histogramBins)
        }
    }

    init(
        count: Int, nanCount: Int, positiveInfinityCount: Int, negativeInfinityCount: Int,
        zeroCount: Int, subnormalCount: Int, beyond3Sigma: Int, beyond6Sigma: Int
    ) {
        self.count = count
        self.nanCount = nanCount
        self.positiveInfinityCount = positiveInfinityCount
        self.negativeInfinityCount = negativeInfinityCount
        self.zeroCount = zeroCount
        self.subnormalCount = subnormalCount
        self.beyond3Sigma = beyond3Sigma
        self.beyond6Sigma = beyond6Sigma
    }
}

extension DType {
    /// The smallest positive normal value of this dtype as a `Float` (0 for integer types, whose
    /// values are never subnormal). F64's threshold is Float's, since statistics see Float values.
    var smallestNormalMagnitude: Float {
        switch self {
        case .f16: Float(Float16.leastNormalMagnitude)
        case .bf16, .f32, .f64: Float.leastNormalMagnitude
        case .f8e4m3: 0x1p-6
        case .f8e5m2: 0x1p-14
        case .f8e4m3fnuz: 0x1p-7
        case .f8e5m2fnuz: 0x1p-15
        default: 0
        }
    }
}
