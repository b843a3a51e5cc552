import QPKCore
import Formats
import Quantize

/// The second pass of the statistics: it needs the mean, the standard deviation and the range
/// found by the first pass, and counts the values beyond 3σ and 6σ from the mean, a fine histogram
/// (for locating percentiles) and the user's histogram.
struct DistributionAccumulator: Sendable {
    var beyond3Sigma = 0
    var beyond6Sigma = 0
    var fine: [Int]
    var user: [Int]

    init(fineBins: Int, userBins: Int) {
        fine = Array(repeating: 0, count: fineBins)
        user = Array(repeating: 0, count: userBins)
    }

    /// Adds the finite values of `values` (every finite value lies in `fineGrid`'s range, which
    /// spans the finite min and max, so the range test also drops NaN and ±Inf).
    mutating func add(
        _ values: UnsafeBufferPointer<Float>, mean: Double, std: Double, fineGrid: BinGrid, userGrid: BinGrid?
    ) {
        let three = 3 * std, six = 6 * std
        var b3 = 0, b6 = 0
        // The bin rule is BinGrid.bin(of:), inlined: OrderStatistics relies on the same bins.
        let lo = fineGrid.lower, hi = fineGrid.upper, scale = fineGrid.scale
        let bins = Double(fineGrid.bins), last = fineGrid.bins - 1
        fine.withUnsafeMutableBufferPointer { fine in
            for x in values {
                let v = Double(x)
                guard v >= lo && v <= hi else { continue }
                let deviation = abs(v - mean)
                b3 &+= deviation > three ? 1 : 0
                b6 &+= deviation > six ? 1 : 0
                let t = (v - lo) * scale
                fine[t < bins ? Int(t) : last] &+= 1
            }
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
        for i in fine.indices { fine[i] += other.fine[i] }
        for i in user.indices { user[i] += other.user[i] }
    }
}
