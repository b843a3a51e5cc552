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

    /// Adds the finite values of `values`.
    mutating func add(
        _ values: UnsafeBufferPointer<Float>, mean: Double, std: Double, fineGrid: BinGrid, userGrid: BinGrid?
    ) {
        let three = 3 * std, six = 6 * std
        var b3 = 0, b6 = 0
        fine.withUnsafeMutableBufferPointer { fine in
            user.withUnsafeMutableBufferPointer { user in
                for x in values where x.isFinite {
                    let v = Double(x)
                    let deviation = abs(v - mean)
                    if deviation > three { b3 += 1 }
                    if deviation > six { b6 += 1 }
                    if let i = fineGrid.bin(of: v) { fine[i] += 1 }
                    if let grid = userGrid, let i = grid.bin(of: v) { user[i] += 1 }
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
