import CBLAS
import QPKCore

/// The settings of the GPTQ solver that are not part of a tensor's ``QuantizationDecision``.
public struct GPTQOptions: Sendable, Hashable {
    /// Dampening: `λ = damp · mean(diag H)` is added to the Hessian's diagonal (GPTQ §4, "numerical
    /// stability"; the reference's `percdamp`, default 0.01).
    public var damp: Double
    /// Quantize columns in order of decreasing `H_jj` (the reference's `act_order`, `desc_act`).
    /// Each group is fitted on the error-updated weights when the sweep first reaches one of its
    /// columns.
    public var actOrder: Bool
    /// With ``actOrder``: keep qpk's contiguous groups (column `c` in group `c / groupSize`, a
    /// QPK v1 layout), whose columns are then spread over the sweep. Without it (the reference's
    /// default, `static_groups=False`) a group is `groupSize` consecutive columns *of the sweep
    /// order*, and the file records each column's group (QPK v2 `group_index`, GPTQ's `g_idx`).
    public var staticGroups: Bool
    /// Columns per lazy batch (GPTQ §4, "lazy batch-updates"; 128 in the paper). With groups the
    /// batch is rounded to a multiple of the group size so that no group straddles two batches.
    public var blockSize: Int

    public init(damp: Double = 0.01, actOrder: Bool = false, staticGroups: Bool = false, blockSize: Int = 128) {
        self.damp = damp
        self.actOrder = actOrder
        self.staticGroups = staticGroups
        self.blockSize = blockSize
    }
}

/// Why GPTQ could not quantize a tensor.
public enum GPTQError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The Hessian's width is not the tensor's input width.
    case hessianShape(tensor: String, columns: Int, hessianSize: Int)
    /// The dampened Hessian (or its inverse) is not positive definite.
    case notPositiveDefinite(tensor: String, damp: Double)
    /// The decision asks for a transform: GPTQ and BoA quantize the weights in their own basis.
    case rotated(tensor: String)

    public var description: String {
        switch self {
        case let .hessianShape(tensor, columns, size):
            "tensor '\(tensor)': the calibration Hessian is \(size)×\(size) but the weight has \(columns) input columns"
        case let .notPositiveDefinite(tensor, damp):
            "tensor '\(tensor)': the calibration Hessian is not positive definite with --damp \(damp); raise --damp (e.g. 0.1) or add calibration text"
        case let .rotated(tensor):
            "tensor '\(tensor)': calibrated methods (--method gptq|boa) do not rotate; drop --transform"
        }
    }
}

/// GPTQ (Frantar, Ashkboos, Hoefler, Alistarh 2022, "GPTQ: Accurate Post-Training Quantization
/// for Generative Pre-trained Transformers", arXiv 2210.17323), written from the paper, with qpk's
/// group fits and PreQuant outliers (spec/quantization.md §11).
///
/// For a linear layer `y = W x` with calibration inputs `X`, GPTQ minimises `‖W X − Ŵ X‖²`, whose
/// Hessian per row is `H = 2 X Xᵀ`. Quantizing the weights of column `q` one at a time, the
/// optimal update of the not yet quantized columns `F` is (OBS, the paper's eq. 2–3)
///
///     δ_F = − (w_q − quant(w_q)) / [H_F⁻¹]_qq · (H_F⁻¹)_:,q
///
/// and GPTQ quantizes the columns in one fixed order for all rows, so that `H_F⁻¹` is shared by
/// every row. The successive inverses are the rows of the upper Cholesky factor `U` of `H⁻¹`
/// (§4, "Cholesky reformulation", eq. 5): with `H⁻¹ = Uᵀ U`, column `j`'s error is
/// `e_j = (w_j − q_j) / U_jj` and the later columns take `W[:, j+1:] −= e_j U[j, j+1:]`. The
/// updates are applied lazily: within a batch of `B` columns immediately, to the columns after the
/// batch once per batch as one matrix product `W[:, i₂:] −= E · U[i₁:i₂, i₂:]` (§4, "lazy
/// batch-updates").
///
/// The steps, as in the reference implementation:
/// 1. PreQuant outliers are chosen on the original weights (``OutlierSelection``, at most the
///    decision's limit). They are never rounded: their error is 0, so they feed no error back,
///    and they keep their full-precision value as the sweep left it (their original value plus
///    the updates that compensate the columns before them). They are left out of every group fit.
/// 2. Dead columns (`H_jj = 0`: an input that is always zero) get `H_jj = 1` and weight 0.
/// 3. Dampening: `H += λ I`, `λ = damp · mean(diag H)`.
/// 4. Act-order (optional): columns are swept in order of decreasing `H_jj`. A group is then
///    `groupSize` consecutive columns of that order, recorded per column in the file's group
///    index (QPK v2, GPTQ's `g_idx`), as in the reference; with ``GPTQOptions/staticGroups`` they
///    stay qpk's contiguous groups (a v1 file), so one group's columns are spread over the sweep.
/// 5. `U = chol(H⁻¹)ᵀ` (upper) through LAPACK `dpotrf`/`dpotri` in float64.
/// 6. The sweep in batches. A group's scale and zero are fitted (with the decision's scale
///    search: min-max, MSE clipping, HQQ; weighted by `columnImportance` when given) when the
///    sweep first reaches one of its columns, on the current, error-updated weights, as the
///    reference does (its `static_groups=False`); one group per row (`groupSize` nil) is fitted
///    up front. Without act-order that is the group's first column and a batch holds whole groups;
///    with act-order the group's later columns still move after the fit.
///
/// The result is a ``QuantizedTensor`` in qpk's layout (codes in the tensor's own column order),
/// with error statistics against the original weights.
public enum GPTQ {
    /// Quantizes `weights` (row-major in `info.shape`) with the calibration Hessian `hessian`
    /// (`columns × columns` of the decision's matrix view, row-major, symmetric), as `decision`
    /// says.
    /// - Parameter columnImportance: optional per-column weights for the MSE group fit
    ///   (``WeightedGroupFit``), e.g. `diag(H)`.
    /// - Throws: ``GPTQError``.
    public static func quantize(
        _ weights: UnsafeBufferPointer<Float>, info: TensorInfo, hessian: [Double],
        decision: QuantizationDecision, options: GPTQOptions = GPTQOptions(), columnImportance: [Float]? = nil
    ) throws -> QuantizedTensor {
        precondition(weights.count == info.elementCount, "GPTQ: \(weights.count) values for \(info.elementCount) elements")
        precondition(QuantizationRecipe.supportedBits.contains(decision.bits) && (decision.groupSize ?? 1) >= 1,
                     "GPTQ: invalid decision \(decision)")
        guard decision.transform == nil else { throw GPTQError.rotated(tensor: info.name) }
        let layout = decision.layout(for: info)
        let columns = layout.matrixShape(of: info).columns
        guard hessian.count == columns * columns else {
            throw GPTQError.hessianShape(tensor: info.name, columns: columns, hessianSize: Int(Double(hessian.count).squareRoot()))
        }
        var solver = Solver(
            weights, info: info, layout: layout, decision: decision, options: options, columnImportance: columnImportance)
        try solver.run(hessian: hessian, name: info.name)
        return solver.result(info: info)
    }
}

/// The state of one GPTQ run over the `rows × columns` matrix view.
struct Solver {
    let original: [Float]
    let rows: Int
    let columns: Int
    let layout: QuantizationLayout
    let decision: QuantizationDecision
    let options: GPTQOptions
    let importance: [Float]
    /// The weights as the sweep updates them (float64).
    var work: [Double]
    /// 1 where the element is a PreQuant outlier (kept exact).
    var mask: [UInt8]
    var outliers: OutlierSet?
    var codes: [UInt8]
    var scales: [Float16]
    var zeros: [Float16]
    /// The final value of every element: `(q − z)·s`, or the outlier's full-precision value.
    var reconstruction: [Float]
    /// The group of each column: `c / groupSize`, or its place in the sweep order divided by the
    /// group size once ``adoptGroups(following:)`` has run.
    var groupOf: [Int]
    /// The columns of each group, in increasing order.
    var groupColumns: [[Int]]
    /// Whether the groups follow the sweep order (the result records a group index).
    var groupsFollowOrder = false
    /// With a codebook (the symmetric scheme): the table and, with log-coded scales, the row
    /// scales, fixed on the original weights before the sweep (``CodebookQuantizer/prepare``);
    /// the sweep then fits each group's signed scale on the weights as updated so far and rounds
    /// every weight to the nearest table entry (the GPTQ update is the same for any rounding).
    var codebook: CodebookQuantizer.Prepared?
    /// With ``codebook``: the signed group scale of each group, on the prepared grid.
    var codebookScales: [Float] = []

    init(
        original: [Float], rows: Int, columns: Int, layout: QuantizationLayout, decision: QuantizationDecision,
        options: GPTQOptions, importance: [Float]
    ) {
        self.original = original
        self.rows = rows
        self.columns = columns
        self.layout = layout
        self.decision = decision
        self.options = options
        self.importance = importance
        work = original.map(Double.init)
        mask = []
        codes = [UInt8](repeating: 0, count: rows * columns)
        let groups = rows * layout.groupsPerRow(columns: columns)
        scales = [Float16](repeating: 0, count: groups)
        zeros = [Float16](repeating: 0, count: groups)
        reconstruction = [Float](repeating: 0, count: rows * columns)
        let size = max(1, layout.groupSize)
        groupOf = (0..<columns).map { $0 / size }
        groupColumns = stride(from: 0, to: columns, by: size).map { Array($0..<min($0 + size, columns)) }
    }

    /// Makes each group `groupSize` consecutive columns of the sweep `order` (GPTQ's act-order
    /// groups, `g_idx[order[i]] = i / groupSize`), when the options ask for it.
    mutating func adoptGroups(following order: [Int]) {
        // In the identity order the groups are the contiguous ones: no index needed (a v1 file).
        guard options.actOrder, !options.staticGroups, decision.groupSize != nil, columns > 0,
              order != Array(0..<columns) else { return }
        let size = max(1, layout.groupSize)
        for (position, column) in order.enumerated() { groupOf[column] = position / size }
        groupColumns = stride(from: 0, to: columns, by: size).map { Array(order[$0..<min($0 + size, columns)]).sorted() }
        groupsFollowOrder = true
    }

    /// The solver of `weights` (row-major in `info.shape`) in `decision`'s matrix view: the
    /// tensor transposed when the decision's axis asks, `columnImportance` kept when usable.
    init(
        _ weights: UnsafeBufferPointer<Float>, info: TensorInfo, layout: QuantizationLayout,
        decision: QuantizationDecision, options: GPTQOptions, columnImportance: [Float]?
    ) {
        let (rows, columns) = layout.matrixShape(of: info)
        var original = [Float](weights)
        if decision.axis.transposes(info.shape) {
            original.withUnsafeMutableBufferPointer { Transpose.matrix(weights, rows: columns, columns: rows, into: $0) }
        }
        self.init(
            original: original, rows: rows, columns: columns, layout: layout, decision: decision,
            options: options, importance: ColumnImportance.usable(columnImportance, columns: columns) ?? [])
        if let kind = decision.codebook, layout.scheme == .symmetric {
            codebook = original.withUnsafeBufferPointer {
                CodebookQuantizer.prepare(
                    $0, info: info, decision: decision, layout: layout, kind: kind, columnImportance: columnImportance).0
            }
            codebookScales = [Float](repeating: 0, count: rows * layout.groupsPerRow(columns: columns))
        }
    }

    var groupsPerRow: Int { layout.groupsPerRow(columns: columns) }

    mutating func run(hessian: [Double], name: String) throws {
        selectOutliers()
        let all = Array(0..<rows)
        let factor = try columnFactor(hessian, rows: all, name: name)
        adoptGroups(following: factor.order)
        if factor.staticGroups {
            for g in 0..<groupsPerRow { fitGroup(g, rows: all) }
        }
        sweep(factor, rows: all)
    }

    /// The PreQuant outliers of the original weights and their mask.
    mutating func selectOutliers() {
        let n = columns
        outliers = original.withUnsafeBufferPointer {
            OutlierSelection.select(
                $0, rows: rows, columns: columns, layout: layout, kind: decision.outlierKind,
                limit: decision.outlierLimit(rows: rows, columns: columns))
        }
        mask = [UInt8](repeating: 0, count: rows * columns)
        outliers?.forEachCoveredElement(rows: rows, columns: n) { mask[$0] = 1 }
    }

    /// What the sweep needs of an input-side Hessian: the column order and `chol(H⁻¹)` in it.
    struct ColumnFactor {
        /// `order[k]` is the column swept `k`-th.
        var order: [Int]
        /// The upper Cholesky factor of the dampened `H⁻¹`, in sweep order.
        var upper: [Double]
        /// Whether the groups are fitted before the sweep (one group per row).
        var staticGroups: Bool
    }

    /// Prepares the sweep with `hessian` for `rowSet`: dead columns (`H_jj = 0` → 1, and the
    /// weights of `rowSet` in that column set to 0), dampening `λ = damp · mean(diag H)`, the
    /// act-order permutation, and `U = chol(H⁻¹)`.
    mutating func columnFactor(_ hessian: [Double], rows rowSet: [Int], name: String) throws -> ColumnFactor {
        let n = columns
        var h = hessian
        for j in 0..<n where h[j * n + j] == 0 {
            h[j * n + j] = 1
            for r in rowSet { work[r * n + j] = 0 }
        }
        var diagonalSum = 0.0
        for j in 0..<n { diagonalSum += h[j * n + j] }
        let lambda = options.damp * diagonalSum / Double(max(n, 1))
        for j in 0..<n { h[j * n + j] += lambda }

        // Act-order: the sweep order.
        var order = Array(0..<n)
        if options.actOrder {
            order.sort { h[$0 * n + $0] != h[$1 * n + $1] ? h[$0 * n + $0] > h[$1 * n + $1] : $0 < $1 }
            var permuted = [Double](repeating: 0, count: n * n)
            for i in 0..<n { for j in 0..<n { permuted[i * n + j] = h[order[i] * n + order[j]] } }
            h = permuted
        }
        let upper = try Self.upperCholeskyOfInverse(h, n: n, name: name, damp: options.damp)
        return ColumnFactor(order: order, upper: upper, staticGroups: decision.groupSize == nil)
    }

    /// Fits the scale and zero-point of group `g` of the rows `rowSet` on their current weights,
    /// outliers left out.
    mutating func fitGroup(_ g: Int, rows rowSet: [Int]) {
        if let codebook {
            fitCodebookGroup(g, rows: rowSet, codebook: codebook)
            return
        }
        let members = groupColumns[g]
        var values = [Float](repeating: 0, count: members.count)
        var weights = [Float](repeating: 0, count: members.count)
        let weighted = !importance.isEmpty
        for r in rowSet {
            var kept = 0
            for c in members where mask[r * columns + c] == 0 {
                values[kept] = Float(work[r * columns + c])
                if weighted { weights[kept] = importance[c] }
                kept += 1
            }
            let fitted = values.withUnsafeBufferPointer { v in
                weights.withUnsafeBufferPointer { w in
                    let group = UnsafeBufferPointer(rebasing: v[0..<kept])
                    return weighted
                        ? WeightedGroupFit.fit(group, weights: UnsafeBufferPointer(rebasing: w[0..<kept]),
                                               bits: layout.bits, scheme: layout.scheme, search: decision.scaleSearch)
                        : GroupFit.fit(group, bits: layout.bits, scheme: layout.scheme, search: decision.scaleSearch)
                }
            }
            let slot = r * groupsPerRow + g
            scales[slot] = fitted.scale
            zeros[slot] = decision.zeroPoints == .float16
                ? fitted.zero : Float16(decision.zeroPoints.constrain(Float(fitted.zero), bits: layout.bits))
        }
    }

    /// ``fitGroup(_:rows:)`` with a codebook: the signed scale of ``CodebookQuantizer/fitScale``
    /// on the current weights, outliers weighted 0.
    mutating func fitCodebookGroup(_ g: Int, rows rowSet: [Int], codebook: CodebookQuantizer.Prepared) {
        let members = groupColumns[g]
        var values = [Float](repeating: 0, count: members.count)
        var weights = [Float](repeating: 0, count: members.count)
        var scratch = CodebookQuantizer.GroupScratch(capacity: members.count)
        for r in rowSet {
            for (i, c) in members.enumerated() {
                values[i] = Float(work[r * columns + c])
                weights[i] = mask[r * columns + c] != 0 ? 0 : importance.isEmpty ? 1 : importance[c]
            }
            values.withUnsafeBufferPointer { v in
                weights.withUnsafeBufferPointer { scratch.load(v, weights: $0) }
            }
            let slot = r * groupsPerRow + g
            codebookScales[slot] = CodebookQuantizer.fitScale(
                scratch, table: codebook.table, shrink: codebook.shrink, refits: codebook.refits,
                snap: { codebook.grid.snap($0, row: r) })
            zeros[slot] = Float16(codebook.zero)
        }
    }

    /// The column-by-column sweep with error feedback, in lazy batches (GPTQ Algorithm 1), over
    /// the rows `rowSet` (each row's sweep depends on no other row, so any subset can be swept on
    /// its own, as BoA does row by row).
    mutating func sweep(_ factor: ColumnFactor, rows rowSet: [Int]) {
        let order = factor.order, upper = factor.upper, fitOnTheWay = !factor.staticGroups
        let rows = rowSet.count
        let n = columns
        let groupSize = layout.groupSize
        // When groups are consecutive in the sweep order (the identity order, or groups that follow
        // the act-order), a batch holds whole groups, so each fit sees fully updated weights.
        let wholeGroups = !options.actOrder || groupsFollowOrder
        let block = fitOnTheWay && wholeGroups ? max(1, options.blockSize / groupSize) * groupSize : max(1, options.blockSize)
        // Where each column is swept, and whether its group's scale and zero are fitted yet.
        var position = [Int](repeating: 0, count: n)
        for (k, column) in order.enumerated() { position[column] = k }
        var fitted = [Bool](repeating: !fitOnTheWay, count: groupsPerRow)
        let top = Float((1 << layout.bits) - 1)
        // The swept columns' current weights, in sweep order, one batch at a time (rows × width).
        var batch = [Double](repeating: 0, count: rows * block)
        var errors = [Double](repeating: 0, count: rows * block)
        // Later columns (in sweep order), rows × (n − i2), for the batch update.
        var start = 0
        while start < n {
            let end = min(start + block, n)
            let width = end - start
            for r in 0..<rows { for k in 0..<width { batch[r * width + k] = work[rowSet[r] * n + order[start + k]] } }
            for k in 0..<width {
                let j = start + k
                let column = order[j]
                let pivot = upper[j * n + j]
                let g = groupOf[column]
                if !fitted[g] {
                    // The sweep reaches the group's first column in sweep order: fit the group on
                    // its weights as updated so far. Those in this batch carry the batch's updates;
                    // those after it get the batch's pending updates `−E[:, :k] · U[start..<j, p]`
                    // for the fit only (the batch's end applies them for good).
                    var saved: [(index: Int, value: Double)] = []
                    for c in groupColumns[g] {
                        let p = position[c]
                        if p < end {
                            for r in 0..<rows { work[rowSet[r] * n + c] = batch[r * width + p - start] }
                        } else if k > 0 {
                            for r in 0..<rows {
                                let index = rowSet[r] * n + c
                                saved.append((index, work[index]))
                                var pending = 0.0
                                for m in 0..<k { pending += errors[r * width + m] * upper[(start + m) * n + p] }
                                work[index] -= pending
                            }
                        }
                    }
                    fitGroup(g, rows: rowSet)
                    for (index, value) in saved { work[index] = value }
                    fitted[g] = true
                }
                for r in 0..<rows {
                    let w = batch[r * width + k]
                    let element = rowSet[r] * n + column
                    let slot = rowSet[r] * groupsPerRow + g
                    // The code and its value: the nearest table entry to w/s with a codebook, else
                    // the same code arithmetic as ``RowJob`` (clamp, then round half to even). An
                    // outlier gets the code of its value too (as ``TensorQuantizer`` gives it; the
                    // reader overwrites it), but keeps its full-precision value and feeds back nothing.
                    let code: UInt8, value: Float
                    if let codebook {
                        let s = codebookScales[slot]
                        let q = codebook.table.index(of: s == 0 ? 0 : Float(w) / s)
                        (code, value) = (UInt8(q), codebook.table.levels[q] * s)
                    } else {
                        let s = Float(scales[slot]), z = Float(zeros[slot])
                        let inverse: Float = s == 0 ? 0 : 1 / s
                        var q = Float(w) * inverse + z
                        if !(q >= 0) { q = 0 }
                        if q > top { q = top }
                        q = (q + 12_582_912) - 12_582_912
                        (code, value) = (UInt8(q), (q - z) * s)
                    }
                    codes[element] = code
                    var error = 0.0
                    if mask[element] != 0 {
                        reconstruction[element] = Float(w)
                    } else {
                        reconstruction[element] = value
                        error = (w - Double(value)) / pivot
                    }
                    errors[r * width + k] = error
                    if error != 0, k + 1 < width {
                        let row = r * width
                        let u = j * n + start
                        for m in (k + 1)..<width { batch[row + m] -= error * upper[u + m] }
                    }
                }
            }
            // W[:, end:] −= E · U[start:end, end:], in sweep order, through one dgemm.
            if end < n {
                let rest = n - end
                var later = [Double](repeating: 0, count: rows * rest)
                for r in 0..<rows { for m in 0..<rest { later[r * rest + m] = work[rowSet[r] * n + order[end + m]] } }
                errors.withUnsafeBufferPointer { e in
                    upper.withUnsafeBufferPointer { u in
                        later.withUnsafeMutableBufferPointer { l in
                            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(rest), Int32(width),
                                        -1, e.baseAddress!, Int32(width), u.baseAddress! + start * n + end, Int32(n),
                                        1, l.baseAddress!, Int32(rest))
                        }
                    }
                }
                for r in 0..<rows { for m in 0..<rest { work[rowSet[r] * n + order[end + m]] = later[r * rest + m] } }
            }
            start = end
        }
    }

    /// The upper Cholesky factor `U` of `H⁻¹` (`H⁻¹ = Uᵀ U`), row-major, the lower triangle zero.
    ///
    /// LAPACK is column-major: a row-major symmetric matrix is its own transpose, and the
    /// column-major lower factor `L` (`A = L Lᵀ`) read row-major is `Lᵀ`, the upper factor with
    /// `A = Uᵀ U`. So `dpotrf('L')` factors `H`, `dpotri('L')` forms `H⁻¹` from it (in the same
    /// triangle), and a second `dpotrf('L')` gives `U`: the reference's
    /// `cholesky(cholesky_inverse(cholesky(H)), upper=True)`.
    static func upperCholeskyOfInverse(_ h: [Double], n: Int, name: String, damp: Double) throws -> [Double] {
        var a = h
        var size = Int32(n), lda = Int32(max(n, 1)), info: Int32 = 0
        var lower = CChar(UInt8(ascii: "L"))
        dpotrf_(&lower, &size, &a, &lda, &info)
        guard info == 0 else { throw GPTQError.notPositiveDefinite(tensor: name, damp: damp) }
        dpotri_(&lower, &size, &a, &lda, &info)
        guard info == 0 else { throw GPTQError.notPositiveDefinite(tensor: name, damp: damp) }
        dpotrf_(&lower, &size, &a, &lda, &info)
        guard info == 0 else { throw GPTQError.notPositiveDefinite(tensor: name, damp: damp) }
        for i in 0..<n { for j in 0..<i { a[i * n + j] = 0 } }
        return a
    }

    /// The quantized tensor, in the tensor's own layout.
    func result(info: TensorInfo) -> QuantizedTensor {
        var packed = [UInt8](repeating: 0, count: layout.packedByteCount(elementCount: rows * columns))
        codes.withUnsafeBufferPointer { source in
            packed.withUnsafeMutableBufferPointer { BitPacking.pack(source, bits: layout.bits, into: $0) }
        }
        var kept = outliers
        if var set = kept {
            switch set.kind {
            case .elements: set.values = set.indices.map { reconstruction[Int($0)] }
            case .rows: set.values = set.indices.flatMap { r in (0..<columns).map { reconstruction[Int(r) * columns + $0] } }
            case .columns: set.values = (0..<rows).flatMap { r in set.indices.map { reconstruction[r * columns + Int($0)] } }
            }
            kept = set
        }
        let error = original.withUnsafeBufferPointer { o in
            reconstruction.withUnsafeBufferPointer { TensorQuantizer.errorStats(original: o, reconstruction: $0) }
        }
        var recorded = layout
        recorded.hasGroupIndex = groupsFollowOrder
        if let codebook {
            var tensor = CodebookQuantizer.assemble(
                info: info, layout: recorded, decision: decision, prepared: codebook, scales: codebookScales,
                codes: codes, outliers: kept)
            tensor.error = error
            tensor.groupIndex = groupsFollowOrder ? groupOf.map { UInt32($0) } : nil
            return tensor
        }
        return QuantizedTensor(
            info: info, layout: recorded, codes: packed, scales: scales, zeros: zeros, outliers: kept,
            error: error, method: decision.methodTag, decision: decision,
            groupIndex: groupsFollowOrder ? groupOf.map { UInt32($0) } : nil)
    }
}

