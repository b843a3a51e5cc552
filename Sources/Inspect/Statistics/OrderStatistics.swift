import QPKCore
import Formats
import Quantize

/// Exact order statistics (the k-th smallest finite value) found without sorting the tensor.
///
/// The fine histogram of the second pass tells which bin holds rank k. Bins small enough are
/// gathered in one more pass and sorted. A bin too large to gather (many values in a narrow
/// range) is narrowed: its members' own range is histogrammed again, and so on; every round
/// excludes the member minimum or maximum from the chosen sub-bin, so the search ends, and a
/// bin whose members are all equal answers at once. Memory stays at ``gatherLimit`` floats.
enum OrderStatistics {
    static let gatherLimit = 1 << 20
    static let refineBins = 4096

    /// The values of rank `ranks` (0-based, among the sorted finite values).
    static func select(
        ranks: [Int], in values: FloatValues, grid: BinGrid, histogram: [Int]
    ) throws -> [Int: Double] {
        var starts = [Int](repeating: 0, count: histogram.count)
        var running = 0
        for (i, c) in histogram.enumerated() {
            starts[i] = running
            running += c
        }
        func bin(ofRank r: Int) -> Int {
            // The last bin whose start is ≤ r and that holds something.
            var lo = 0, hi = histogram.count - 1
            while lo < hi {
                let mid = (lo + hi + 1) / 2
                if starts[mid] <= r { lo = mid } else { hi = mid - 1 }
            }
            while histogram[lo] == 0 && lo > 0 { lo -= 1 }
            return lo
        }
        var wanted: [Int: [Int]] = [:]
        for r in ranks where r >= 0 && r < running { wanted[bin(ofRank: r), default: []].append(r) }
        var answers: [Int: Double] = [:]
        var gatherable = Set<Int>()
        var gathered = 0
        for b in wanted.keys.sorted() where histogram[b] + gathered <= gatherLimit {
            gatherable.insert(b)
            gathered += histogram[b]
        }
        if !gatherable.isEmpty {
            // A bin → slot table (−1: not wanted), so the hot loop does one array load per value.
            let bins = gatherable.sorted()
            var slots = [Int32](repeating: -1, count: histogram.count)
            for (slot, b) in bins.enumerated() { slots[b] = Int32(slot) }
            let table = slots
            // The wanted bins as Float intervals, so that the pass tests eight values at a time and
            // computes a value's bin only when it falls inside one (a small fraction of them).
            let intervals = FloatIntervals(bins.map { grid.floatRange(ofBin: $0) })
            let partials = try Parallel.mapChunks(count: values.count) { range in
                values.withChunk(range) { chunk in
                    var sets = [[Float]](repeating: [], count: bins.count)
                    table.withUnsafeBufferPointer { table in
                        intervals.forEachMember(of: chunk) { x in
                            guard x.isFinite, let b = grid.bin(of: Double(x)) else { return }
                            let slot = table[b]
                            if slot >= 0 { sets[Int(slot)].append(x) }
                        }
                    }
                    return sets
                }
            }
            for (slot, b) in bins.enumerated() {
                let sorted = partials.flatMap { $0[slot] }.sorted()
                guard !sorted.isEmpty else { continue }  // only if the data changed between passes
                for r in wanted[b] ?? [] { answers[r] = Double(sorted[max(0, min(r - starts[b], sorted.count - 1))]) }
            }
        }
        for (b, ranksInBin) in wanted where !gatherable.contains(b) {
            for r in ranksInBin {
                answers[r] = try narrow(values, path: [(grid, b)], count: histogram[b], within: r - starts[b])
            }
        }
        return answers
    }

    /// The value of rank `within` among the `count` members of the nested bin `path`.
    private static func narrow(
        _ values: FloatValues, path: [(BinGrid, Int)], count: Int, within: Int
    ) throws -> Double {
        let isMember: @Sendable (Double) -> Bool = { v in path.allSatisfy { $0.0.bin(of: v) == $0.1 } }
        if count <= gatherLimit || path.count > 64 {
            let sets = try gather(values) { isMember($0) ? 0 : nil }
            let sorted = (sets[0] ?? []).sorted()
            return sorted.isEmpty ? .nan : Double(sorted[max(0, min(within, sorted.count - 1))])
        }
        let ranges = try Parallel.mapChunks(count: values.count) { range in
            values.withChunk(range) { chunk in
                var lo = Float.infinity, hi = -Float.infinity
                for x in chunk where x.isFinite && isMember(Double(x)) {
                    lo = min(lo, x)
                    hi = max(hi, x)
                }
                return (lo, hi)
            }
        }
        let lo = ranges.map(\.0).min() ?? .nan, hi = ranges.map(\.1).max() ?? .nan
        if lo == hi { return Double(lo) }
        let grid = BinGrid(lower: Double(lo), upper: Double(hi), bins: refineBins)
        let partials = try Parallel.mapChunks(count: values.count) { range in
            values.withChunk(range) { chunk in
                var counts = [Int](repeating: 0, count: refineBins)
                for x in chunk where x.isFinite {
                    let v = Double(x)
                    if isMember(v), let b = grid.bin(of: v) { counts[b] += 1 }
                }
                return counts
            }
        }
        var counts = [Int](repeating: 0, count: refineBins)
        for p in partials { for i in counts.indices { counts[i] += p[i] } }
        var before = 0
        for (b, c) in counts.enumerated() {
            if within < before + c {
                return try narrow(values, path: path + [(grid, b)], count: c, within: within - before)
            }
            before += c
        }
        return Double(hi)
    }

    /// The finite values for which `key` gives a bin, grouped by bin.
    private static func gather(
        _ values: FloatValues, key: @escaping @Sendable (Double) -> Int?
    ) throws -> [Int: [Float]] {
        let partials = try Parallel.mapChunks(count: values.count) { range in
            values.withChunk(range) { chunk in
                var sets: [Int: [Float]] = [:]
                for x in chunk where x.isFinite {
                    if let b = key(Double(x)) { sets[b, default: []].append(x) }
                }
                return sets
            }
        }
        var merged: [Int: [Float]] = [:]
        for p in partials { for (b, v) in p { merged[b, default: []] += v } }
        return merged
    }
}
