import Kernels
import QPKCore

/// Codebook quantization with one signed scale per group (spec/quantization.md §14):
/// `x̂ = s_g · t[q]`, stored as a QPK v2 codebook with the symmetric zero-point
/// (`codebook[q] = z + t[q]`, `z = 2^(bits−1)`, spec/qpk-format.md §5.7), the group scales fp16
/// or log-coded below a row scale (§5.8).
///
/// The table `t` is NF4 (QLoRA's NormalFloat) or, for ``CodebookKind/lloyd``, fitted to the tensor:
/// weighted Lloyd–Max (one-dimensional k-means; Lloyd 1982, Max 1960) on the group-normalised
/// weights, started from the NormalFloat table, alternating the group fit below with the table
/// update `t_k = Σ w·s·x / Σ w·s²` over the elements coded `k` — the minimiser of the weighted
/// error for fixed scales and codes. Any4 (Elhoushi et al. 2025) fits tables per row; one table
/// per tensor costs 2^bits fp16 values, 256 bits at 4-bit codes.
///
/// One group's fit, with column weights `w` (importance, zero on outliers): the scale maps the
/// group's largest-magnitude value `m` onto the table's positive end (its extra level), shrunk by
/// `p ∈ {1, 0.975, …, 0.5}` (MSE search; `p = 1` only for `minmax`), then two weighted least-squares
/// refits `s = Σ w·t[q]·x / Σ w·t[q]²` of the best; every candidate is rounded to what the file
/// can store (fp16, or the nearest log-grid code) before it is scored, so the scale kept is the
/// best storable one. Codes are the nearest table entry of `x/s` (ties to the lower entry).
///
/// With log-coded scales the fit runs twice: once with fp16 scales, whose largest magnitude per
/// row becomes the row scale `d_r`, then again with every candidate snapped to the grid below it.
enum CodebookQuantizer {
    /// Table update rounds for ``CodebookKind/lloyd``: two measured as good as six on MiniLM-L6
    /// (0.9842 against 0.9841 mean embedding cosine, bench/quality/research).
    static let lloydRounds = 2

    /// The most rows a table update reads: larger matrices fit their table on every `k`-th row
    /// (`k = ceil(rows / lloydSampleRows)`), since 2,048 rows already hold hundreds of thousands
    /// of values per entry of a 16-entry table; the final fits always cover every row.
    static let lloydSampleRows = 2048

    /// The shrink factors of the MSE scale search: `1 − i/40`, `i = 0 … 20`.
    static let shrinkFactors: [Float] = (0...20).map { 1 - Float($0) / 40 }

    /// What a codebook quantization fixes before its final fit: the outliers, the table (fitted or
    /// NF4) and, with log-coded scales, the row scales and their grid. GPTQ and BoA
    /// (``Solver``) start from it and fit each group's scale on the weights as their sweep updates
    /// them.
    struct Prepared {
        /// The scale search: shrink factors and least-squares refits (``fitScale``).
        let shrink: [Float]
        let refits: Int
        let outliers: OutlierSet?
        let weights: FitWeights
        /// The table as stored (`z + t`, ascending) and in stored units (`t`).
        let entries: [Float16]
        let table: CodebookTable
        /// The group scales of the fp16 fit with the final table.
        let scales: [Float]
        /// The codes of that fit.
        let codes: [UInt8]
        /// The grid the final scales are stored on: fp16, or log codes below ``rowScales``.
        let grid: ScaleGrid
        let rowScales: [Float16]?
        /// The symmetric zero-point `2^(bits−1)`.
        let zero: Float
    }

    static func quantize(
        _ values: UnsafeBufferPointer<Float>, info: TensorInfo, decision: QuantizationDecision,
        layout: QuantizationLayout, kind: CodebookKind, columnImportance: [Float]?
    ) -> QuantizedTensor {
        let (prepared, problem) = prepare(
            values, info: info, decision: decision, layout: layout, kind: kind, columnImportance: columnImportance)
        var scales = prepared.scales
        var codes = prepared.codes
        if case .logCoded = prepared.grid {
            _ = problem.fit(table: prepared.table, weights: prepared.weights, grid: prepared.grid, scales: &scales, codes: &codes)
        }
        var tensor = assemble(info: info, layout: layout, decision: decision, prepared: prepared, scales: scales, codes: codes)
        let (rows, columns) = layout.matrixShape(of: info)
        let count = rows * columns
        let reconstruction = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            try? Dequantizer.dequantizeMatrix(tensor, rows: rows, columns: columns, count: count, into: buffer)
            initialized = count
        }
        tensor.error = reconstruction.withUnsafeBufferPointer {
            TensorQuantizer.errorStats(original: problem.values, reconstruction: $0)
        }
        return tensor
    }

    /// Selects the outliers, fits the table (two Lloyd rounds for ``CodebookKind/lloyd``), fits
    /// every group with fp16 scales and, with log-coded scales, takes each row's largest `|s|`
    /// as its row scale. The ``Problem`` refers to `values` and must not outlive it.
    static func prepare(
        _ values: UnsafeBufferPointer<Float>, info: TensorInfo, decision: QuantizationDecision,
        layout: QuantizationLayout, kind: CodebookKind, columnImportance: [Float]?
    ) -> (Prepared, Problem) {
        let (rows, columns) = layout.matrixShape(of: info)
        let count = rows * columns
        let groupsPerRow = layout.groupsPerRow(columns: columns)
        let zero = Float(1 << (layout.bits - 1))
        let outliers = OutlierSelection.select(
            values, rows: rows, columns: columns, layout: layout, kind: decision.outlierKind,
            limit: decision.outlierLimit(rows: rows, columns: columns))
        // Fit weights: the column's importance, 0 where an outlier is kept exactly (a byte per
        // element marks those, only when there are any).
        let columnWeights = ColumnImportance.usable(columnImportance, columns: columns)
            ?? [Float](repeating: 1, count: columns)
        var excluded: [UInt8] = []
        if let outliers {
            excluded = [UInt8](repeating: 0, count: count)
            outliers.forEachCoveredElement(rows: rows, columns: columns) { excluded[$0] = 1 }
        }
        let shrink = decision.scaleSearch == .minmax ? [Float(1)] : shrinkFactors
        let refits = decision.scaleSearch == .minmax ? 0 : 2
        let problem = Problem(
            values: UnsafeBufferPointer(rebasing: values[0..<count]), rows: rows, columns: columns,
            groupSize: layout.groupSize, groupsPerRow: groupsPerRow, shrink: shrink, refits: refits)

        // The table, in stored units: entry − z, with the entries rounded to fp16 as the file keeps them.
        func storedTable(_ levels: [Float]) -> (entries: [Float16], table: CodebookTable) {
            let entries = levels.map { Float16(zero + $0) }.sorted()
            return (entries, CodebookTable(levels: entries.map { Float($0) - zero }))
        }
        var (entries, table) = storedTable(CodebookKind.normalFloatLevels(bits: layout.bits).map { $0 * zero })
        var scales = [Float](repeating: 0, count: rows * groupsPerRow)
        var codes = [UInt8](repeating: 0, count: count)
        let weights = FitWeights(columns: columnWeights, excluded: excluded)
        if kind == .lloyd {
            let stride = (rows + lloydSampleRows - 1) / lloydSampleRows
            for _ in 0..<lloydRounds {
                let sums = problem.fit(
                    table: table, weights: weights, grid: .float16, scales: &scales, codes: &codes, rowStride: max(1, stride))
                var levels = table.levels
                for k in levels.indices where sums.denominators[k] > 0 {
                    let level = Float(sums.numerators[k] / sums.denominators[k])
                    if level.isFinite { levels[k] = level }
                }
                (entries, table) = storedTable(levels)
            }
        }
        _ = problem.fit(table: table, weights: weights, grid: .float16, scales: &scales, codes: &codes)

        var grid = ScaleGrid.float16
        var rowScales: [Float16]?
        if let coding = layout.scaleCodes {
            let rowScale = (0..<rows).map { r in
                var largest: Float = 0
                for g in 0..<groupsPerRow { largest = max(largest, abs(scales[r * groupsPerRow + g])) }
                return GroupFit.half(largest)
            }
            grid = .logCoded(coding, magnitudes: coding.magnitudes, rowScales: rowScale.map { Float($0) })
            rowScales = rowScale
        }
        let prepared = Prepared(
            shrink: shrink, refits: refits, outliers: outliers, weights: weights, entries: entries, table: table,
            scales: scales, codes: codes, grid: grid, rowScales: rowScales, zero: zero)
        return (prepared, problem)
    }

    /// The quantized tensor of `codes` (one per element, unpacked) and `scales` (one per group, on
    /// the prepared grid), with the prepared table, outliers (or `outliers`) and row scales; its
    /// error is the caller's to set.
    static func assemble(
        info: TensorInfo, layout: QuantizationLayout, decision: QuantizationDecision, prepared: Prepared,
        scales: [Float], codes: [UInt8], outliers: OutlierSet? = nil
    ) -> QuantizedTensor {
        let (rows, columns) = layout.matrixShape(of: info)
        let count = rows * columns
        let groupsPerRow = layout.groupsPerRow(columns: columns)
        var scaleCodes: [UInt8]?
        if let coding = layout.scaleCodes, let rowScales = prepared.rowScales {
            scaleCodes = (0..<(rows * groupsPerRow)).map { slot in
                coding.code(for: scales[slot], rowScale: Float(rowScales[slot / max(groupsPerRow, 1)]))
            }
        }
        var packed = [UInt8](repeating: 0, count: layout.packedByteCount(elementCount: count))
        codes.withUnsafeBufferPointer { source in
            packed.withUnsafeMutableBufferPointer { BitPacking.pack(source, bits: layout.bits, into: $0) }
        }
        return QuantizedTensor(
            info: info, layout: layout, codes: packed,
            scales: scaleCodes == nil ? scales.map { Float16($0) } : [],
            zeros: [Float16](repeating: Float16(prepared.zero), count: rows * groupsPerRow),
            outliers: outliers ?? prepared.outliers,
            method: decision.methodTag, decision: decision, codebook: prepared.entries,
            scaleCodes: scaleCodes, rowScales: prepared.rowScales)
    }

    /// The scale of one group (loaded in `scratch`) against `table`: the candidates
    /// `snap(m·p / t_max)` over `shrink`, `m` the kept value of largest magnitude with its sign,
    /// then `refits` weighted least-squares refits of the best, each snapped (`snap` rounds to what
    /// the file stores). A group with nothing to fit gets `snap(0)`.
    static func fitScale(
        _ scratch: GroupScratch, table: CodebookTable, shrink: [Float], refits: Int, snap: (Float) -> Float
    ) -> Float {
        let top = table.levels[table.levels.count - 1]
        var extreme: Float = 0
        for i in 0..<scratch.count where scratch.weight(i) > 0 && abs(scratch.value(i)) > abs(extreme) {
            extreme = scratch.value(i)
        }
        var bestScale: Float = 0
        var bestError = Float.infinity
        if extreme != 0, top > 0 {
            for p in shrink {
                let s = snap(extreme * p / top)
                guard s != 0, s.isFinite else { continue }
                let e = scratch.error(scale: s, table: table)
                if e < bestError { bestError = e; bestScale = s }
            }
            for _ in 0..<refits where bestScale != 0 {
                let (cx, cc) = scratch.projection(scale: bestScale, table: table)
                guard cc > 0 else { break }
                let s = snap(cx / cc)
                guard s != 0, s.isFinite else { continue }
                let e = scratch.error(scale: s, table: table)
                if e < bestError { bestError = e; bestScale = s }
            }
        }
        // Fp16 can store 0; the log grid's smallest magnitude stands in for it (no code is 0).
        return bestScale == 0 ? snap(0) : bestScale
    }

    /// The values a group scale can be stored as.
    enum ScaleGrid {
        /// One fp16 value per group.
        case float16
        /// A log-grid code below the row's scale (spec/qpk-format.md §5.8).
        case logCoded(ScaleCodes, magnitudes: [Float], rowScales: [Float])

        /// The storable scale nearest to `scale` in row `row`.
        @inline(__always)
        func snap(_ scale: Float, row: Int) -> Float {
            switch self {
            case .float16:
                return Float(GroupFit.half(scale))
            case let .logCoded(coding, magnitudes, rowScales):
                let d = rowScales[row]
                return coding.scale(code: coding.code(for: scale, rowScale: d), rowScale: d, magnitudes: magnitudes)
            }
        }
    }

    /// The weight of each element in the fit: its column's, or 0 where `excluded` (if not empty)
    /// marks an outlier.
    struct FitWeights: Sendable {
        let columns: [Float]
        let excluded: [UInt8]
    }

    /// The Lloyd statistics of one pass: per table entry, `Σ w·s·x` and `Σ w·s²` over the
    /// elements coded to it.
    struct TableSums {
        var numerators: [Double]
        var denominators: [Double]
    }

    /// A matrix cut into groups, and how its scales are searched.
    struct Problem: @unchecked Sendable {
        let values: UnsafeBufferPointer<Float>
        let rows: Int
        let columns: Int
        let groupSize: Int
        let groupsPerRow: Int
        let shrink: [Float]
        let refits: Int

        /// Fits the groups of every `rowStride`-th row against `table` with scales from `grid`,
        /// writing their `scales` and `codes`, and returns the table statistics of the result.
        func fit(
            table: CodebookTable, weights: FitWeights, grid: ScaleGrid,
            scales: inout [Float], codes: inout [UInt8], rowStride: Int = 1
        ) -> TableSums {
            let levelCount = table.levels.count
            let chunkCount = max(1, min(rows, Parallel.coreCount * 4))
            let per = (rows + chunkCount - 1) / chunkCount
            return scales.withUnsafeMutableBufferPointer { scaleBuffer in
                codes.withUnsafeMutableBufferPointer { codeBuffer in
                    let shared = UncheckedSendable((scaleBuffer, codeBuffer, weights, grid))
                    let partial = (try? Parallel.map(count: chunkCount, workers: Parallel.coreCount) { chunk -> TableSums in
                        var sums = TableSums(
                            numerators: [Double](repeating: 0, count: levelCount),
                            denominators: [Double](repeating: 0, count: levelCount))
                        let lo = chunk * per, hi = min(rows, lo + per)
                        var scratch = GroupScratch(capacity: groupSize)
                        for r in lo..<max(lo, hi) where r % rowStride == 0 {
                            fitRow(r, table: table, weights: shared.value.2, grid: shared.value.3, scratch: &scratch,
                                   scales: shared.value.0, codes: shared.value.1, sums: &sums)
                        }
                        return sums
                    }) ?? []
                    var total = TableSums(
                        numerators: [Double](repeating: 0, count: levelCount),
                        denominators: [Double](repeating: 0, count: levelCount))
                    for sums in partial {
                        for k in 0..<levelCount {
                            total.numerators[k] += sums.numerators[k]
                            total.denominators[k] += sums.denominators[k]
                        }
                    }
                    return total
                }
            }
        }

        private func fitRow(
            _ r: Int, table: CodebookTable, weights: FitWeights, grid: ScaleGrid,
            scratch: inout GroupScratch, scales: UnsafeMutableBufferPointer<Float>,
            codes: UnsafeMutableBufferPointer<UInt8>, sums: inout TableSums
        ) {
            for g in 0..<groupsPerRow {
                let start = r * columns + g * groupSize
                let end = r * columns + min((g + 1) * groupSize, columns)
                scratch.load(values, weights, range: start..<end, firstColumn: g * groupSize)
                let bestScale = CodebookQuantizer.fitScale(
                    scratch, table: table, shrink: shrink, refits: refits, snap: { grid.snap($0, row: r) })
                scales[r * groupsPerRow + g] = bestScale
                for i in 0..<scratch.count {
                    let x = scratch.value(i)
                    let k = table.index(of: bestScale == 0 ? 0 : x / bestScale)
                    codes[start + i] = UInt8(k)
                    let w = Double(scratch.weight(i))
                    if w > 0, x.isFinite {
                        sums.numerators[k] += w * Double(bestScale) * Double(x)
                        sums.denominators[k] += w * Double(bestScale) * Double(bestScale)
                    }
                }
            }
        }
    }

    /// One group's values and weights, padded with zeros to whole SIMD vectors.
    struct GroupScratch {
        var values: [SIMD8<Float>]
        var weights: [SIMD8<Float>]
        var count = 0

        init(capacity: Int) {
            values = [SIMD8<Float>](repeating: .zero, count: (capacity + 7) / 8)
            weights = values
        }

        /// Loads the elements `range` of `source`, whose first is in column `firstColumn`.
        mutating func load(_ source: UnsafeBufferPointer<Float>, _ fitWeights: FitWeights, range: Range<Int>, firstColumn: Int) {
            count = range.count
            for v in 0..<values.count {
                var x = SIMD8<Float>(), w = SIMD8<Float>()
                for lane in 0..<8 {
                    let i = v * 8 + lane
                    if i < count {
                        x[lane] = source[range.lowerBound + i]
                        let kept = fitWeights.excluded.isEmpty || fitWeights.excluded[range.lowerBound + i] == 0
                        w[lane] = kept ? fitWeights.columns[firstColumn + i] : 0
                    }
                }
                values[v] = x
                weights[v] = w
            }
        }

        /// Loads `source` with the fit weights `sourceWeights` (0 for an outlier).
        mutating func load(_ source: UnsafeBufferPointer<Float>, weights sourceWeights: UnsafeBufferPointer<Float>) {
            count = source.count
            for v in 0..<values.count {
                var x = SIMD8<Float>(), w = SIMD8<Float>()
                for lane in 0..<8 where v * 8 + lane < count {
                    x[lane] = source[v * 8 + lane]
                    w[lane] = sourceWeights[v * 8 + lane]
                }
                values[v] = x
                weights[v] = w
            }
        }

        func value(_ i: Int) -> Float { values[i >> 3][i & 7] }
        func weight(_ i: Int) -> Float { weights[i >> 3][i & 7] }

        /// `Σ w·(s·t[q(x/s)] − x)²` (``Kernels/CodebookKernel/weightedError``).
        func error(scale: Float, table: CodebookTable) -> Float {
            values.withUnsafeBufferPointer { v in
                weights.withUnsafeBufferPointer { w in
                    KernelDispatch.codebookError(v, w, scale: scale, table: table)
                }
            }
        }

        /// `(Σ w·t[q]·x, Σ w·t[q]²)` with the codes of `scale`: the least-squares scale is their
        /// ratio (``Kernels/CodebookKernel/projection``).
        func projection(scale: Float, table: CodebookTable) -> (Float, Float) {
            values.withUnsafeBufferPointer { v in
                weights.withUnsafeBufferPointer { w in
                    KernelDispatch.codebookProjection(v, w, scale: scale, table: table)
                }
            }
        }
    }
}

/// An ascending table of code values with the decision thresholds between neighbours.
struct CodebookTable: Sendable {
    /// Ascending values, one per code.
    let levels: [Float]
    /// `(levels[k] + levels[k+1]) / 2`.
    let midpoints: [Float]
    /// `levels[k+1] − levels[k]`.
    let steps: [Float]

    init(levels: [Float]) {
        self.levels = levels
        midpoints = zip(levels, levels.dropFirst()).map { ($0 + $1) / 2 }
        steps = zip(levels, levels.dropFirst()).map { $1 - $0 }
    }

    /// The code of `t`: the number of thresholds below it (the nearest level, ties to the lower).
    @inline(__always)
    func index(of t: Float) -> Int {
        var k = 0
        for m in midpoints where t > m { k += 1 }
        return k
    }

    /// `levels[index(of: t)]` for eight values at once (``Kernels/CodebookKernel/reconstruct``).
    @inline(__always)
    func reconstruct(_ t: SIMD8<Float>) -> SIMD8<Float> {
        withKernelArguments { first, midpoints, steps, thresholds in
            CodebookKernel.reconstruct(t, first: first, midpoints: midpoints, steps: steps, thresholds: thresholds)
        }
    }

    /// The table as the kernels take it: its first level, the thresholds and steps between
    /// neighbouring levels, and their count.
    @inline(__always)
    func withKernelArguments<R>(
        _ body: (Float, UnsafePointer<Float>, UnsafePointer<Float>, Int) -> R
    ) -> R {
        midpoints.withUnsafeBufferPointer { m in
            steps.withUnsafeBufferPointer { d in body(levels[0], m.baseAddress!, d.baseAddress!, m.count) }
        }
    }
}
