import QPKCore
import Formats
import Quantize

/// The second pass of the statistics: it needs the mean and standard deviation (and, for the
/// user's histogram, the range) found by the first pass, and counts the finite values beyond 3σ
/// and 6σ from the mean and the user's histogram.
struct DistributionAccumulator: Sendable {
    var beyond3Sigma = 0
    var beyond6Sigma = 0
    var user: [Int]

    init(userBins: Int) {
        user = Array(repeating: 0, count: userBins)
    }

    /// Adds the finite values of `values` (the user grid spans the finite min and max, so its
    /// range test also drops NaN and ±Inf).
    mutating func add(
        _ values: UnsafeBufferPointer<Float>, three: DeviationBounds, six: DeviationBounds, userGrid: BinGrid?
    ) {
        let n = values.count
        guard n > 0, let base = values.baseAddress else { return }
        let raw = UnsafeRawPointer(base)
        let big = SIMD8<Float>(repeating: .greatestFiniteMagnitude)
        let above3 = SIMD8<Float>(repeating: three.above), below3 = SIMD8<Float>(repeating: three.below)
        let above6 = SIMD8<Float>(repeating: six.above), below6 = SIMD8<Float>(repeating: six.below)
        let one = SIMD8<Int32>(repeating: 1), none = SIMD8<Int32>()
        var c3 = SIMD8<Int32>(), c6 = SIMD8<Int32>()
        let vectors = n / 8
        for i in 0..<vectors {
            let x = raw.loadUnaligned(fromByteOffset: i &* 32, as: SIMD8<Float>.self)
            let finite = (x .>= -big) .& (x .<= big)
            c3 &+= none.replacing(with: one, where: ((x .>= above3) .| (x .< below3)) .& finite)
            c6 &+= none.replacing(with: one, where: ((x .>= above6) .| (x .< below6)) .& finite)
        }
        var b3 = Int(c3.wrappedSum()), b6 = Int(c6.wrappedSum())
        for i in (vectors * 8)..<n where base[i].isFinite {
            b3 += three.contains(base[i]) ? 1 : 0
            b6 += six.contains(base[i]) ? 1 : 0
        }
        if let grid = userGrid {
            user.withUnsafeMutableBufferPointer { user in
                for x in values {
                    if let i = grid.bin(of: Double(x)) { user[i] &+= 1 }
                }
            }
        }
        beyond3Sigma += b3
        beyond6Sigma += b6
    }

    mutating func merge(_ other: DistributionAccumulator) {
        beyond3Sigma += other.beyond3Sigma
        beyond6Sigma += other.beyond6Sigma
        for i in user.indices { user[i] += other.user[i] }
    }
}

/// The finite Floats `x` with `|Double(x) − mean| > limit` (the Double test of the statistics'
/// σ counts), as two Float thresholds: `x ≥ above` or `x < below`.
///
/// `Double(x) − mean` rounds monotonically in `x`, so `{x : Double(x) − mean > limit}` is an upper
/// set of the Floats and `{x : Double(x) − mean < −limit}` a lower set; `|d| > limit` is exactly
/// their union. Each end is found by bisection over the ordered Floats with the Double test
/// itself as the judge, so comparing Floats (eight at a time) counts exactly the same values.
struct DeviationBounds: Sendable {
    /// The least finite Float in the upper set (+∞ when it is empty).
    let above: Float
    /// The least finite Float not in the lower set (+∞ when every finite Float is in it).
    let below: Float

    init(mean: Double, limit: Double) {
        above = Self.least { Double($0) - mean > limit } ?? .infinity
        below = Self.least { !(Double($0) - mean < -limit) } ?? .infinity
    }

    /// Whether finite `x` is beyond the limit.
    @inline(__always) func contains(_ x: Float) -> Bool { x >= above || x < below }

    /// The least finite Float for which the up-closed `predicate` holds.
    static func least(_ predicate: (Float) -> Bool) -> Float? {
        let top = BinGrid.key(.greatestFiniteMagnitude)
        var lo = BinGrid.key(-.greatestFiniteMagnitude), hi = top + 1
        while lo < hi {
            let mid = lo + (hi - lo) / 2
            if predicate(BinGrid.float(mid)) { hi = mid } else { lo = mid + 1 }
        }
        return lo > top ? nil : BinGrid.float(lo)
    }
}
