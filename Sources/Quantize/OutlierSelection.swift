import QPKCore
import Foundation

/// Chooses the parameters a tensor keeps at full precision, within a parameter budget
/// (spec/quantization.md §5).
///
/// PreQuant (Gong et al. 2023) keeps a small outlier set at full precision and later fine-tunes
/// exactly it. qpk supports the three shapes such a set can take:
/// - **elements** (the default, by measurement): the single values whose removal shrinks their
///   group's quantization range the most. Removing an extreme value `x` from a group of `n` values
///   narrows the range from `R` to `R'`, and the expected rounding error of the other values falls
///   by about `(n − 1)·(R² − R'²)/(12·L²)` (uniform rounding noise has variance `Δ²/12`, `Δ = R/L`).
///   Each group proposes up to six removals in greedy order (each time the end that shrinks the
///   range more), their gains made non-increasing; the budget goes to the globally largest gains.
///   The selected values are left out of their group's range and stored exactly.
/// - **rows**: whole rows with the largest estimated error `Σ_groups n·R²` ("outlier dimensions").
/// - **columns**: whole columns with the largest energy `Σ_rows x²`, i.e. the input features that
///   carry outlier activations' weights in transformer layers.
public enum OutlierSelection {
    /// How many removals a single group may propose.
    static let maxRemovalsPerGroup = 6

    /// Selects at most `limit` outliers of the `rows × columns` row-major `values`.
    ///
    /// - Parameter limit: the most indices (elements, rows or columns, by `kind`) to keep, from
    ///   ``QuantizationDecision/outlierLimit(rows:columns:)``, which applies the budget and the
    ///   bits-per-weight cap.
    /// - Returns: `nil` when the limit is zero or nothing is worth keeping.
    public static func select(
        _ values: UnsafeBufferPointer<Float>, rows: Int, columns: Int, layout: QuantizationLayout,
        kind: OutlierSet.Kind, limit: Int
    ) -> OutlierSet? {
        let count = rows * columns
        guard count > 0, values.count >= count, limit > 0 else { return nil }
        switch kind {
        case .elements:
            return selectElements(values, rows: rows, columns: columns, layout: layout, limit: limit)
        case .rows:
            return selectRows(values, rows: rows, columns: columns, layout: layout, limit: min(limit, rows))
        case .columns:
            return selectColumns(values, rows: rows, columns: columns, limit: min(limit, columns))
        }
    }

    // MARK: Elements

    static func selectElements(
        _ values: UnsafeBufferPointer<Float>, rows: Int, columns: Int, layout: QuantizationLayout, limit: Int
    ) -> OutlierSet? {
        let groupSize = max(1, layout.groupSize)
        let groupsPerRow = layout.groupsPerRow(columns: columns)
        let k = maxRemovalsPerGroup
        let slots = rows * groupsPerRow * k
        var gains = [Float](repeating: -.infinity, count: slots)
        var picks = [Int32](repeating: -1, count: slots)
        let levels = Float((1 << layout.bits) - 1)
        let symmetric = layout.scheme == .symmetric
        gains.withUnsafeMutableBufferPointer { gainBuffer in
            picks.withUnsafeMutableBufferPointer { pickBuffer in
                let out = SharedOutput(gains: gainBuffer, picks: pickBuffer)
                Parallel.forEachChunk(rows: rows, work: columns * 4) { range in
                    let finder = ExtremeFinder(capacity: k + 1)
                    defer { finder.deallocate() }
                    for r in range {
                        for g in 0..<groupsPerRow {
                            let start = g * groupSize
                            let end = min(start + groupSize, columns)
                            let slot = (r * groupsPerRow + g) * k
                            finder.proposeRemovals(
                                values, rowOffset: r * columns, start: start, end: end, symmetric: symmetric,
                                levels: levels, maxRemovals: k, gains: out.gains, picks: out.picks, slot: slot)
                        }
                    }
                }
            }
        }
        // The globally largest gains win; ties at the threshold are taken in tensor order.
        var positive = gains.filter { $0 > 0 && $0.isFinite }
        guard !positive.isEmpty else { return nil }
        let takeAll = positive.count <= limit
        let threshold: Float
        var tiesLeft = 0
        if takeAll {
            threshold = positive.min() ?? 0
        } else {
            positive.sort(by: >)
            threshold = positive[limit - 1]
            tiesLeft = limit - positive.prefix(while: { $0 > threshold }).count
        }
        var indices: [Int64] = []
        indices.reserveCapacity(min(limit, positive.count))
        for group in 0..<(rows * groupsPerRow) {
            let r = group / groupsPerRow
            for s in 0..<k {
                let slot = group * k + s
                let gain = gains[slot]
                guard gain > 0, gain.isFinite, picks[slot] >= 0 else { break }
                if gain > threshold || takeAll {
                    indices.append(Int64(r * columns + Int(picks[slot])))
                } else if gain == threshold, tiesLeft > 0 {
                    indices.append(Int64(r * columns + Int(picks[slot])))
                    tiesLeft -= 1
                } else {
                    break
                }
            }
        }
        guard !indices.isEmpty else { return nil }
        indices.sort()
        let kept = indices.map { values[Int($0)] }
        return OutlierSet(
            kind: .elements, indices: indices, values: kept, statistic: "range_shrink_gain",
            threshold: Double(threshold))
    }

    // MARK: Rows and columns

    static func selectRows(
        _ values: UnsafeBufferPointer<Float>, rows: Int, columns: Int, layout: QuantizationLayout, limit: Int
    ) -> OutlierSet? {
        let groupSize = max(1, layout.groupSize)
        var scores = [Double](repeating: 0, count: rows)
        for r in 0..<rows {
            var score = 0.0
            var start = 0
            while start < columns {
                let end = min(start + groupSize, columns)
                let group = UnsafeBufferPointer(rebasing: values[(r * columns + start)..<(r * columns + end)])
                let (lo, hi, m) = GroupFit.extremes(group)
                let range = layout.scheme == .symmetric ? 2 * Double(abs(m)) : Double(hi - lo)
                score += Double(end - start) * range * range
                start = end
            }
            scores[r] = score
        }
        let chosen = topIndices(scores, limit: limit)
        guard !chosen.indices.isEmpty else { return nil }
        var kept: [Float] = []
        kept.reserveCapacity(chosen.indices.count * columns)
        for r in chosen.indices { kept.append(contentsOf: values[(r * columns)..<(r * columns + columns)]) }
        return OutlierSet(
            kind: .rows, indices: chosen.indices.map(Int64.init), values: kept, statistic: "row_range_energy",
            threshold: chosen.threshold)
    }

    static func selectColumns(_ values: UnsafeBufferPointer<Float>, rows: Int, columns: Int, limit: Int) -> OutlierSet? {
        var scores = [Double](repeating: 0, count: columns)
        for r in 0..<rows {
            let base = r * columns
            for c in 0..<columns {
                let x = Double(values[base + c])
                if x.isFinite { scores[c] += x * x }
            }
        }
        let chosen = topIndices(scores, limit: limit)
        guard !chosen.indices.isEmpty else { return nil }
        var kept: [Float] = []
        kept.reserveCapacity(chosen.indices.count * rows)
        for r in 0..<rows {
            for c in chosen.indices { kept.append(values[r * columns + c]) }
        }
        return OutlierSet(
            kind: .columns, indices: chosen.indices.map(Int64.init), values: kept, statistic: "column_l2_squared",
            threshold: chosen.threshold)
    }

    /// The `limit` indices with the largest positive scores, sorted ascending, and the smallest
    /// score among them.
    static func topIndices(_ scores: [Double], limit: Int) -> (indices: [Int], threshold: Double) {
        let ranked = scores.indices.filter { scores[$0] > 0 && scores[$0].isFinite }
            .sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
        let chosen = Array(ranked.prefix(limit))
        return (chosen.sorted(), chosen.last.map { scores[$0] } ?? 0)
    }
}

/// Output buffers shared by the parallel workers; each worker writes disjoint slots.
struct SharedOutput: @unchecked Sendable {
    let gains: UnsafeMutableBufferPointer<Float>
    let picks: UnsafeMutableBufferPointer<Int32>
}

/// Finds a group's few smallest and largest values and proposes greedy removals.
///
/// Keeps two short sorted lists in scratch memory (insertion sort: almost every value is rejected
/// by a single comparison with the list's last entry).
struct ExtremeFinder {
    let lowValues: UnsafeMutableBufferPointer<Float>
    let lowColumns: UnsafeMutableBufferPointer<Int32>
    let highValues: UnsafeMutableBufferPointer<Float>
    let highColumns: UnsafeMutableBufferPointer<Int32>
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        lowValues = .allocate(capacity: capacity)
        lowColumns = .allocate(capacity: capacity)
        highValues = .allocate(capacity: capacity)
        highColumns = .allocate(capacity: capacity)
    }

    func deallocate() {
        lowValues.deallocate()
        lowColumns.deallocate()
        highValues.deallocate()
        highColumns.deallocate()
    }

    /// Inserts into an ascending list (`descending == false`) or a descending one, of `count`
    /// entries, truncated to `cap`; returns the new count.
    @inline(__always)
    static func insert(
        _ value: Float, _ column: Int32, values: UnsafeMutableBufferPointer<Float>,
        columns: UnsafeMutableBufferPointer<Int32>, count: Int, cap: Int, descending: Bool
    ) -> Int {
        @inline(__always) func before(_ a: Float, _ b: Float) -> Bool { descending ? a > b : a < b }
        var n = count
        if n == cap {
            guard before(value, values[cap - 1]) else { return n }
            n -= 1
        }
        var i = n
        while i > 0, before(value, values[i - 1]) {
            values[i] = values[i - 1]
            columns[i] = columns[i - 1]
            i -= 1
        }
        values[i] = value
        columns[i] = column
        return n + 1
    }

    /// Writes up to `maxRemovals` (gain, column) proposals for the group `[start, end)` of a row.
    func proposeRemovals(
        _ values: UnsafeBufferPointer<Float>, rowOffset: Int, start: Int, end: Int, symmetric: Bool,
        levels: Float, maxRemovals: Int, gains: UnsafeMutableBufferPointer<Float>,
        picks: UnsafeMutableBufferPointer<Int32>, slot: Int
    ) {
        let n = end - start
        let steps = min(maxRemovals, n - 2)
        guard steps > 0 else { return }
        let cap = steps + 1
        var lows = 0, highs = 0
        for c in start..<end {
            let x = values[rowOffset + c]
            guard x.isFinite else { continue }
            if symmetric {
                let a = abs(x)
                if highs < cap || a > highValues[cap - 1] {
                    highs = Self.insert(a, Int32(c), values: highValues, columns: highColumns, count: highs, cap: cap, descending: true)
                }
            } else {
                if lows < cap || x < lowValues[cap - 1] {
                    lows = Self.insert(x, Int32(c), values: lowValues, columns: lowColumns, count: lows, cap: cap, descending: false)
                }
                if highs < cap || x > highValues[cap - 1] {
                    highs = Self.insert(x, Int32(c), values: highValues, columns: highColumns, count: highs, cap: cap, descending: true)
                }
            }
        }
        let norm = 1 / (12 * levels * levels)
        var lastGain = Float.infinity
        if symmetric {
            guard highs == cap else { return }
            var previous = 4 * highValues[0] * highValues[0]
            for s in 0..<steps {
                let next = 4 * highValues[s + 1] * highValues[s + 1]
                lastGain = min(lastGain, Float(n - s - 1) * (previous - next) * norm)
                gains[slot + s] = lastGain
                picks[slot + s] = highColumns[s]
                previous = next
            }
            return
        }
        guard lows == cap, highs == cap else { return }
        var a = 0, b = 0
        var previous = (highValues[0] - lowValues[0]) * (highValues[0] - lowValues[0])
        for s in 0..<steps {
            let dropLow = highValues[b] - lowValues[a + 1]
            let dropHigh = highValues[b + 1] - lowValues[a]
            let takeLow = dropLow < dropHigh
            let range = takeLow ? dropLow : dropHigh
            let next = range * range
            lastGain = min(lastGain, Float(n - s - 1) * (previous - next) * norm)
            gains[slot + s] = lastGain
            if takeLow {
                picks[slot + s] = lowColumns[a]
                a += 1
            } else {
                picks[slot + s] = highColumns[b]
                b += 1
            }
            previous = next
        }
    }
}
