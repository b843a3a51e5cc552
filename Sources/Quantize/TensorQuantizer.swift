import QPKCore

/// Quantizes one tensor as its ``QuantizationDecision`` says (spec/quantization.md §1).
///
/// The tensor is viewed as `rows × columns` along the decision's axis (for `.leading`, the
/// transpose of the row-major tensor, so that columns are the layer's inputs) and cut into groups
/// of `groupSize` consecutive columns per row, the last one possibly partial. The steps:
/// 1. select the outliers (PreQuant), at most ``QuantizationDecision/outlierLimit(rows:columns:)``;
/// 2. per group, fit an fp16 scale and zero-point to the values that are not outliers;
/// 3. compute the codes `q = clamp(round(x/s + z), 0, 2^b − 1)` (half to even) and pack them
///    LSB-first;
/// 4. measure the error of the reconstruction — `(q − z)·s`, with outliers restored exactly —
///    against the input: SQNR and max abs error, exactly what ``Dequantizer`` will produce.
///
/// Large tensors are split by rows over the cores. Memory: one byte per element for the unpacked
/// codes, plus a byte per element as an outlier mask when there are element/column outliers, plus
/// a transposed copy of the values for `.leading` tensors.
public enum TensorQuantizer {
    /// Quantizes `values` (row-major in `info.shape`, `info.elementCount` of them) as `decision`
    /// says.
    ///
    /// - Parameter columnImportance: optional error weights, one per column of the matrix view
    ///   (input feature), ≥ 0. When given (and the search is `.mse`), each group's scale and zero
    ///   minimise the weighted error `Σ w_col (x̂ − x)²` (``WeightedGroupFit``); `nil` (or a wrong
    ///   length) keeps the unweighted fit.
    /// - Precondition: `values.count == info.elementCount`, and the decision's bits are 2, 3, 4
    ///   or 8 with a group size ≥ 1 (Convert validates the recipe once, up front).
    public static func quantize(
        _ values: UnsafeBufferPointer<Float>, info: TensorInfo, decision: QuantizationDecision,
        columnImportance: [Float]? = nil
    ) -> QuantizedTensor {
        precondition(values.count == info.elementCount, "TensorQuantizer: \(values.count) values for \(info.elementCount) elements")
        precondition(QuantizationRecipe.supportedBits.contains(decision.bits) && (decision.groupSize ?? 1) >= 1,
                     "TensorQuantizer: invalid decision \(decision)")
        guard decision.axis.transposes(info.shape) else {
            return quantizeMatrix(values, info: info, decision: decision, columnImportance: columnImportance)
        }
        let (rows, columns) = decision.axis.matrixShape(of: info.shape)
        let transposed = [Float](unsafeUninitializedCapacity: values.count) { buffer, initialized in
            Transpose.matrix(values, rows: columns, columns: rows, into: buffer)
            initialized = values.count
        }
        return transposed.withUnsafeBufferPointer {
            quantizeMatrix($0, info: info, decision: decision, columnImportance: columnImportance)
        }
    }

    /// Quantizes with a file-wide recipe, groups along the last axis (tests and small tensors).
    public static func quantize(
        _ values: UnsafeBufferPointer<Float>, info: TensorInfo, recipe: QuantizationRecipe,
        columnImportance: [Float]? = nil
    ) -> QuantizedTensor {
        quantize(values, info: info, decision: recipe.decision(), columnImportance: columnImportance)
    }

    /// Quantizes `values`, already in the decision's matrix view (row-major `rows × columns`).
    static func quantizeMatrix(
        _ values: UnsafeBufferPointer<Float>, info: TensorInfo, decision: QuantizationDecision,
        columnImportance: [Float]?
    ) -> QuantizedTensor {
        let layout = decision.layout(for: info)
        if let transform = layout.transform {
            return quantizeTransformed(
                values, info: info, decision: decision, layout: layout, transform: transform,
                columnImportance: columnImportance)
        }
        if let codebook = decision.codebook, layout.scheme == .symmetric {
            return CodebookQuantizer.quantize(
                values, info: info, decision: decision, layout: layout, kind: codebook,
                columnImportance: columnImportance)
        }
        if let codebook = decision.codebook {
            return quantizeWithCodebook(
                values, info: info, decision: decision, layout: layout, codebook: codebook,
                columnImportance: columnImportance)
        }
        let (rows, columns) = layout.matrixShape(of: info)
        let groupsPerRow = layout.groupsPerRow(columns: columns)
        let count = rows * columns
        let weights = ColumnImportance.usable(columnImportance, columns: columns) ?? []
        let outliers = OutlierSelection.select(
            values, rows: rows, columns: columns, layout: layout, kind: decision.outlierKind,
            limit: decision.outlierLimit(rows: rows, columns: columns))

        // Which elements are left out of their group's range (element and column outliers).
        var mask: [UInt8] = []
        var outlierRows: [Bool] = []
        if let outliers {
            switch outliers.kind {
            case .elements:
                mask = [UInt8](repeating: 0, count: count)
                for index in outliers.indices { mask[Int(index)] = 1 }
            case .columns:
                mask = [UInt8](repeating: 0, count: count)
                for r in 0..<rows {
                    for c in outliers.indices { mask[r * columns + Int(c)] = 1 }
                }
            case .rows:
                outlierRows = [Bool](repeating: false, count: rows)
                for r in outliers.indices { outlierRows[Int(r)] = true }
            }
        }

        // Rows whose packed codes fill whole bytes are packed as soon as they are encoded, from a
        // row of scratch; otherwise every code is kept, then the tensor is packed at the end.
        var packed = [UInt8](repeating: 0, count: layout.packedByteCount(elementCount: count))
        let packsRows = (columns * layout.bits) % 8 == 0
        var codes = [UInt8](repeating: 0, count: packsRows ? 0 : count)
        var scales = [Float16](repeating: 0, count: rows * groupsPerRow)
        var zeros = [Float16](repeating: 0, count: rows * groupsPerRow)
        let chunkCount = 64
        var signal = [Double](repeating: 0, count: chunkCount)
        var noise = [Double](repeating: 0, count: chunkCount)
        var maxError = [Double](repeating: 0, count: chunkCount)

        codes.withUnsafeMutableBufferPointer { codeBuffer in
            packed.withUnsafeMutableBufferPointer { packedBuffer in
                scales.withUnsafeMutableBufferPointer { scaleBuffer in
                    zeros.withUnsafeMutableBufferPointer { zeroBuffer in
                        mask.withUnsafeBufferPointer { maskBuffer in
                            signal.withUnsafeMutableBufferPointer { signalBuffer in
                                noise.withUnsafeMutableBufferPointer { noiseBuffer in
                                    maxError.withUnsafeMutableBufferPointer { maxBuffer in
                                        let job = RowJob(
                                            values: values, mask: maskBuffer, outlierRows: outlierRows,
                                            columnWeights: weights, columns: columns,
                                            layout: layout, search: decision.scaleSearch, zeroPoints: decision.zeroPoints,
                                            codes: codeBuffer, packed: packsRows ? packedBuffer : nil,
                                            scales: scaleBuffer, zeros: zeroBuffer, signal: signalBuffer,
                                            noise: noiseBuffer, maxError: maxBuffer)
                                        let per = (rows + chunkCount - 1) / max(chunkCount, 1)
                                        let cost = decision.scaleSearch == .minmax ? columns * 2 : columns * 40
                                        Parallel.forEachChunk(rows: chunkCount, work: per * cost) { chunks in
                                            for chunk in chunks {
                                                let lo = chunk * per
                                                let hi = min(rows, lo + per)
                                                if lo < hi { job.run(rows: lo..<hi, slot: chunk) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        if !packsRows {
            codes.withUnsafeBufferPointer { source in
                packed.withUnsafeMutableBufferPointer { BitPacking.pack(source, bits: layout.bits, into: $0) }
            }
        }
        let error = errorStats(signal: signal.reduce(0, +), noise: noise.reduce(0, +), maxAbsError: maxError.max() ?? 0)
        return QuantizedTensor(
            info: info, layout: layout, codes: packed, scales: scales, zeros: zeros, outliers: outliers,
            error: error, method: decision.methodTag, decision: decision)
    }

    /// Quantizes the matrix `values` in the rotated domain of `transform` (spec/qpk-format.md
    /// §5.6, spec/quantization.md §14):
    /// 1. the outliers are selected on the original values (they are restored in the original
    ///    domain, so PreQuant still fine-tunes real weights), and their positions are set to 0;
    /// 2. every row is rotated, `M̃ = M·D·H`, with the tensor's deterministic signs
    ///    (``HadamardTransform/signs(columns:name:)``);
    /// 3. `M̃` is quantized without outliers; the column weights become the diagonal of the rotated
    ///    weighting `H·D·diag(w)·D·H`, which in each block is the block's mean weight;
    /// 4. the error is measured on the reconstruction `dequant(M̃)·H·D` with the outliers restored,
    ///    against the original values: exactly what readers decode.
    static func quantizeTransformed(
        _ values: UnsafeBufferPointer<Float>, info: TensorInfo, decision: QuantizationDecision,
        layout: QuantizationLayout, transform: WeightTransform, columnImportance: [Float]?
    ) -> QuantizedTensor {
        let (rows, columns) = layout.matrixShape(of: info)
        let count = rows * columns
        let block = transform.blockSize
        let outliers = OutlierSelection.select(
            values, rows: rows, columns: columns, layout: layout, kind: decision.outlierKind,
            limit: decision.outlierLimit(rows: rows, columns: columns))
        let signs = HadamardTransform.signs(columns: columns, name: info.name)
        var rotated = Array(values.prefix(count))
        outliers?.forEachCoveredElement(rows: rows, columns: columns) { rotated[$0] = 0 }
        rotated.withUnsafeMutableBufferPointer {
            HadamardTransform.forward($0, rows: rows, columns: columns, blockSize: block, signs: signs)
        }
        var rotatedImportance: [Float]?
        if let weights = ColumnImportance.usable(columnImportance, columns: columns) {
            var means = weights
            for start in stride(from: 0, to: columns, by: block) {
                var sum: Float = 0
                for c in start..<(start + block) { sum += weights[c] }
                for c in start..<(start + block) { means[c] = sum / Float(block) }
            }
            rotatedImportance = means
        }
        var inner = decision
        inner.transform = nil
        inner.outlierBudget = 0
        inner.maxBitsPerWeight = nil
        var tensor = rotated.withUnsafeBufferPointer {
            quantizeMatrix($0, info: info, decision: inner, columnImportance: rotatedImportance)
        }
        tensor.layout = layout
        tensor.transformSigns = signs
        tensor.outliers = outliers
        tensor.decision = decision
        tensor.method = decision.methodTag
        let reconstruction = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            // Consistent by construction (the layout and data come from this function).
            try? Dequantizer.dequantizeMatrix(tensor, rows: rows, columns: columns, count: count, into: buffer)
            initialized = count
        }
        tensor.error = reconstruction.withUnsafeBufferPointer {
            errorStats(original: UnsafeBufferPointer(rebasing: values[0..<count]), reconstruction: $0)
        }
        return tensor
    }

    /// Quantizes the matrix `values` with codes that index `codebook` under the affine scheme
    /// (spec/qpk-format.md §5.7, spec/quantization.md §14; the symmetric scheme is
    /// ``CodebookQuantizer``'s signed scales): per group, the uniform fit of the decision (scale search,
    /// zero-point domain) places the group on the code range; each kept value takes the code of
    /// the nearest codebook entry to `x/s + z` (ties to the lower code); then up to two
    /// least-squares rounds refit `s` (and a free fp16 `z`) to the codebook values with the codes
    /// held fixed, each kept only if the group's error falls. Outliers are selected and restored
    /// as in ``quantizeMatrix(_:info:decision:columnImportance:)``; the codes under them are the
    /// nearest entries too. Column importance weights the refit. The error is measured on the
    /// decoded tensor.
    static func quantizeWithCodebook(
        _ values: UnsafeBufferPointer<Float>, info: TensorInfo, decision: QuantizationDecision,
        layout: QuantizationLayout, codebook kind: CodebookKind, columnImportance: [Float]?
    ) -> QuantizedTensor {
        let (rows, columns) = layout.matrixShape(of: info)
        let count = rows * columns
        let groupSize = layout.groupSize
        let groupsPerRow = layout.groupsPerRow(columns: columns)
        let table = kind.values(scheme: layout.scheme)
        let levels = table.map(Float.init)
        let weights = ColumnImportance.usable(columnImportance, columns: columns)
        let outliers = OutlierSelection.select(
            values, rows: rows, columns: columns, layout: layout, kind: decision.outlierKind,
            limit: decision.outlierLimit(rows: rows, columns: columns))
        var excluded = [Bool](repeating: false, count: count)
        outliers?.forEachCoveredElement(rows: rows, columns: columns) { excluded[$0] = true }
        @inline(__always) func nearest(_ t: Float) -> Int {
            var best = 0, distance = abs(levels[0] - t)
            for k in 1..<levels.count where abs(levels[k] - t) < distance {
                best = k
                distance = abs(levels[k] - t)
            }
            return best
        }
        var codes = [UInt8](repeating: 0, count: count)
        var scales = [Float16](repeating: 0, count: rows * groupsPerRow)
        var zeros = [Float16](repeating: 0, count: rows * groupsPerRow)
        let freeZero = layout.scheme == .affine && decision.zeroPoints == .float16
        var kept: [Float] = [], keptWeights: [Float] = []
        for r in 0..<rows {
            for g in 0..<groupsPerRow {
                let start = r * columns + g * groupSize, end = r * columns + min((g + 1) * groupSize, columns)
                kept.removeAll(keepingCapacity: true)
                keptWeights.removeAll(keepingCapacity: true)
                for i in start..<end where !excluded[i] {
                    kept.append(values[i])
                    keptWeights.append(weights?[i - r * columns] ?? 1)
                }
                var fitted = kept.withUnsafeBufferPointer {
                    GroupFit.fit($0, bits: layout.bits, scheme: layout.scheme, search: decision.scaleSearch,
                                 zeroPoints: decision.zeroPoints)
                }
                if decision.zeroPoints != .float16 {
                    fitted.zero = Float16(decision.zeroPoints.constrain(Float(fitted.zero), bits: layout.bits))
                }
                func error(_ p: GroupParameters) -> Float {
                    let s = Float(p.scale), z = Float(p.zero)
                    var sum: Float = 0
                    for (k, x) in kept.enumerated() {
                        let q = s == 0 ? nearest(z) : nearest(x / s + z)
                        let e = (levels[q] - z) * s - x
                        sum += keptWeights[k] * e * e
                    }
                    return sum
                }
                var best = fitted, bestError = error(fitted)
                for _ in 0..<2 where bestError > 0 && best.scale != 0 && kept.count > 1 {
                    let s = Float(best.scale), z = Float(best.zero)
                    var sw: Float = 0, sv: Float = 0, sx: Float = 0, svv: Float = 0, svx: Float = 0
                    for (k, x) in kept.enumerated() {
                        let w = keptWeights[k]
                        let v = freeZero ? levels[nearest(x / s + z)] : levels[nearest(x / s + z)] - z
                        sw += w; sv += w * v; sx += w * x; svv += w * v * v; svx += w * v * x
                    }
                    var candidate = best
                    if freeZero {
                        let variance = svv - sv * sv / sw
                        guard sw > 0, variance > 0 else { break }
                        let slope = (svx - sv * sx / sw) / variance
                        let scale = GroupFit.half(slope)
                        guard scale != 0 else { break }
                        candidate = GroupParameters(scale: scale, zero: GroupFit.half(-((sx - slope * sv) / sw) / Float(scale)))
                    } else {
                        guard svv > 0 else { break }
                        let scale = GroupFit.half(svx / svv)
                        guard scale != 0 else { break }
                        candidate.scale = scale
                    }
                    let e = error(candidate)
                    guard e < bestError, e.isFinite else { break }
                    best = candidate
                    bestError = e
                }
                let slot = r * groupsPerRow + g
                scales[slot] = best.scale
                zeros[slot] = best.zero
                let s = Float(best.scale), z = Float(best.zero)
                for i in start..<end { codes[i] = UInt8(s == 0 ? nearest(z) : nearest(values[i] / s + z)) }
            }
        }
        var packed = [UInt8](repeating: 0, count: layout.packedByteCount(elementCount: count))
        codes.withUnsafeBufferPointer { source in
            packed.withUnsafeMutableBufferPointer { BitPacking.pack(source, bits: layout.bits, into: $0) }
        }
        var tensor = QuantizedTensor(
            info: info, layout: layout, codes: packed, scales: scales, zeros: zeros, outliers: outliers,
            method: decision.methodTag, decision: decision, codebook: table)
        let reconstruction = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            try? Dequantizer.dequantizeMatrix(tensor, rows: rows, columns: columns, count: count, into: buffer)
            initialized = count
        }
        tensor.error = reconstruction.withUnsafeBufferPointer {
            errorStats(original: UnsafeBufferPointer(rebasing: values[0..<count]), reconstruction: $0)
        }
        return tensor
    }

    /// Quantizes an array with a file-wide recipe (convenience for tests and small tensors).
    public static func quantize(
        _ values: [Float], info: TensorInfo, recipe: QuantizationRecipe, columnImportance: [Float]? = nil
    ) -> QuantizedTensor {
        values.withUnsafeBufferPointer { quantize($0, info: info, recipe: recipe, columnImportance: columnImportance) }
    }

    /// Quantizes an array as `decision` says (convenience for tests and small tensors).
    public static func quantize(
        _ values: [Float], info: TensorInfo, decision: QuantizationDecision, columnImportance: [Float]? = nil
    ) -> QuantizedTensor {
        values.withUnsafeBufferPointer { quantize($0, info: info, decision: decision, columnImportance: columnImportance) }
    }

    /// SQNR = 10·log10(Σx² / Σ(x − x̂)²) in dB: +∞ for an exact reconstruction.
    public static func errorStats(signal: Double, noise: Double, maxAbsError: Double) -> QuantizationErrorStats {
        let sqnr: Double
        if noise == 0 {
            sqnr = .infinity
        } else if signal == 0 {
            sqnr = -.infinity
        } else {
            sqnr = 10 * log10Double(signal / noise)
        }
        return QuantizationErrorStats(sqnrDB: sqnr, maxAbsError: maxAbsError)
    }

    /// The error stats of `reconstruction` against `original` (the same formula the quantizer uses).
    public static func errorStats(
        original: UnsafeBufferPointer<Float>, reconstruction: UnsafeBufferPointer<Float>
    ) -> QuantizationErrorStats {
        let n = min(original.count, reconstruction.count)
        var signal = 0.0, noise = 0.0, worst = 0.0
        for i in 0..<n {
            let x = Double(original[i])
            let e = x - Double(reconstruction[i])
            signal += x * x
            noise += e * e
            worst = max(worst, abs(e))
        }
        return errorStats(signal: signal, noise: noise, maxAbsError: worst)
    }
}

/// The per-row work of ``TensorQuantizer``: fit, encode and measure rows into disjoint slots.
struct RowJob: @unchecked Sendable {
    let values: UnsafeBufferPointer<Float>
    let mask: UnsafeBufferPointer<UInt8>
    let outlierRows: [Bool]
    /// Per-column error weights (``ColumnImportance``), or empty for the unweighted fit.
    let columnWeights: [Float]
    let columns: Int
    let layout: QuantizationLayout
    let search: ScaleSearch
    let zeroPoints: ZeroPointDomain
    /// Every code of the tensor, one per byte, when ``packed`` is nil; unused otherwise.
    let codes: UnsafeMutableBufferPointer<UInt8>
    /// The packed codes of the tensor, written row by row, when rows fill whole bytes.
    let packed: UnsafeMutableBufferPointer<UInt8>?
    let scales: UnsafeMutableBufferPointer<Float16>
    let zeros: UnsafeMutableBufferPointer<Float16>
    let signal: UnsafeMutableBufferPointer<Double>
    let noise: UnsafeMutableBufferPointer<Double>
    let maxError: UnsafeMutableBufferPointer<Double>

    func run(rows: Range<Int>, slot: Int) {
        let groupSize = layout.groupSize
        let groupsPerRow = layout.groupsPerRow(columns: columns)
        let bits = layout.bits
        let top = Float((1 << bits) - 1)
        let hasMask = !mask.isEmpty
        let scratch = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(groupSize, 1))
        defer { scratch.deallocate() }
        let weighted = !columnWeights.isEmpty
        let weightScratch = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(groupSize, 1))
        defer { weightScratch.deallocate() }
        var signalSum = 0.0, noiseSum = 0.0, worst = 0.0
        let rowScratch = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: packed == nil ? 0 : columns)
        defer { rowScratch.deallocate() }
        let rowBytes = columns * bits / 8
        for r in rows {
            defer {
                if let packed {
                    BitPacking.pack(
                        UnsafeBufferPointer(rowScratch), bits: bits,
                        into: UnsafeMutableBufferPointer(rebasing: packed[(r * rowBytes)..<((r + 1) * rowBytes)]))
                }
            }
            // The row's codes: the scratch row, packed when the row is done, or the row's slice.
            let rowCodes = packed == nil ? codes.baseAddress! + r * columns : rowScratch.baseAddress!
            let rowIsOutlier = !outlierRows.isEmpty && outlierRows[r]
            if !hasMask && !weighted && !rowIsOutlier {
                // Every value of the row is encoded: fit, then encode and measure in one SIMD pass.
                for g in 0..<groupsPerRow {
                    let start = r * columns + g * groupSize
                    let end = r * columns + min((g + 1) * groupSize, columns)
                    let fitted = GroupFit.fit(
                        UnsafeBufferPointer(rebasing: values[start..<end]), bits: bits, scheme: layout.scheme,
                        search: search, zeroPoints: zeroPoints)
                    let zero = zeroPoints == .float16
                        ? fitted.zero : GroupFit.narrow(zeroPoints.constrain(GroupFit.widen(fitted.zero), bits: bits))
                    scales[r * groupsPerRow + g] = fitted.scale
                    zeros[r * groupsPerRow + g] = zero
                    let measure = KernelDispatch.encode(
                        values.baseAddress! + start, count: end - start, codes: rowCodes + (start - r * columns),
                        scale: GroupFit.widen(fitted.scale), zero: GroupFit.widen(zero), top: top)
                    signalSum += measure.signal
                    noiseSum += measure.noise
                    worst = max(worst, Double(measure.worst))
                }
                continue
            }
            for g in 0..<groupsPerRow {
                let start = r * columns + g * groupSize
                let end = r * columns + min((g + 1) * groupSize, columns)
                // Gather the group's kept values.
                var kept = 0
                let rowStart = r * columns
                if hasMask {
                    for i in start..<end where mask[i] == 0 {
                        scratch[kept] = values[i]
                        if weighted { weightScratch[kept] = columnWeights[i - rowStart] }
                        kept += 1
                    }
                } else {
                    for i in start..<end {
                        scratch[i - start] = values[i]
                        if weighted { weightScratch[i - start] = columnWeights[i - rowStart] }
                    }
                    kept = end - start
                }
                let group = UnsafeBufferPointer(rebasing: scratch[0..<kept])
                let fitted = weighted
                    ? WeightedGroupFit.fit(
                        group, weights: UnsafeBufferPointer(rebasing: weightScratch[0..<kept]), bits: bits,
                        scheme: layout.scheme, search: search, zeroPoints: zeroPoints)
                    : GroupFit.fit(group, bits: bits, scheme: layout.scheme, search: search, zeroPoints: zeroPoints)
                // The codes are computed against the zero-point as stored (an integer for GPTQ).
                let zero = zeroPoints == .float16
                    ? fitted.zero : Float16(zeroPoints.constrain(Float(fitted.zero), bits: bits))
                scales[r * groupsPerRow + g] = fitted.scale
                zeros[r * groupsPerRow + g] = zero
                let s = Float(fitted.scale)
                let z = Float(zero)
                let inverse: Float = s == 0 ? 0 : 1 / s
                var groupSignal = 0.0, groupNoise = 0.0, groupWorst: Float = 0
                for i in start..<end {
                    let x = values[i]
                    // Clamp, then round half to even with the 1.5·2^23 trick: the same code as
                    // rounding first, as the bounds are integers (a −0 code becomes +0).
                    var q = x * inverse + z
                    if !(q >= 0) { q = 0 }  // also maps NaN to 0
                    if q > top { q = top }
                    q = (q + 12_582_912) - 12_582_912
                    rowCodes[i - rowStart] = UInt8(q)
                    let exact = rowIsOutlier || (hasMask && mask[i] != 0)
                    let e = exact ? 0 : (q - z) * s - x
                    groupSignal += Double(x) * Double(x)
                    groupNoise += Double(e) * Double(e)
                    groupWorst = max(groupWorst, abs(e))
                }
                signalSum += groupSignal
                noiseSum += groupNoise
                worst = max(worst, Double(groupWorst))
            }
        }
        signal[slot] = signalSum
        noise[slot] = noiseSum
        maxError[slot] = worst
    }
}

#if canImport(Glibc)
import Glibc
@inline(__always) func log10Double(_ x: Double) -> Double { Glibc.log10(x) }
#elseif canImport(Darwin)
import Darwin
@inline(__always) func log10Double(_ x: Double) -> Double { Darwin.log10(x) }
#endif
