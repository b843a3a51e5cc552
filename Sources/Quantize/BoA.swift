import QPKCore

/// The Hessians BoA quantizes one attention projection with: the Kronecker factors of the
/// attention-aware Hessian `H = H_row ⊗ H_col` of each head (Kim et al. 2025, §3).
public struct AttentionAwareHessians: Sendable {
    /// Heads the weight's output rows split into (contiguous blocks of `rows / heads`).
    public var heads: Int
    /// The input side `H_col` (`columns × columns`, row-major): one matrix shared by every head
    /// (the query and key projections: `2/n · Σ x xᵀ`), or one per head (the value projection:
    /// `2/n · Σ (A_h X)(A_h X)ᵀ`).
    public var columns: [[Double]]
    /// The output side `H_row` per head (`headSize × headSize`, row-major); nil for the identity,
    /// when the rows of a head do not interact and BoA is GPTQ with the head's `H_col`.
    public var rows: [[Double]]?

    public init(heads: Int, columns: [[Double]], rows: [[Double]]?) {
        self.heads = heads
        self.columns = columns
        self.rows = rows
    }
}

/// Why BoA could not quantize a tensor.
public enum BoAError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The Hessians do not fit the weight (head count, sizes).
    case hessianShape(tensor: String, detail: String)

    public var description: String {
        switch self {
        case let .hessianShape(tensor, detail): "tensor '\(tensor)': the attention-aware Hessians do not fit the weight: \(detail)"
        }
    }
}

/// BoA (Kim, Kim, Cho, Lee, Kim, Jeon 2025, "BoA: Attention-aware Post-training Quantization
/// without Backpropagation", ICML 2025, arXiv 2406.13474), written from the paper
/// (spec/quantization.md §12).
///
/// GPTQ minimises each projection's own output error, whose Hessian is `I ⊗ H_col` with
/// `H_col = 2 X Xᵀ`: the rows of `W` do not interact. BoA minimises the error of the attention
/// output instead, and for a head's rows of the query, key and value projections that Hessian
/// couples the rows. It approximates it by a Kronecker product `H_row ⊗ H_col` per head (the
/// paper's attention-aware Hessians, §3.2–3.3, with the softmax Jacobian relaxed away):
///
/// - query head `h`: `H_col = 2/n Σ x xᵀ`, `H_row = 2/n Σ k kᵀ` over the keys of the head
///   (post-RoPE keys turned back by each query position's rotation where the model has RoPE),
///   since the score error is `ΔS = ΔQ Kᵀ`;
/// - key head: the same with the queries, `ΔS = Q ΔKᵀ`;
/// - value head: `H_col = 2/n Σ (A_h X)(A_h X)ᵀ` (the inputs mixed by the head's attention
///   probabilities, since `ΔO_h = A_h X ΔW_hᵀ`), `H_row` the identity (as the authors' code) or
///   `W_O,hᵀ W_O,h` (the paper's eq. for the value with the output projection).
///
/// With `H⁻¹ = H_row⁻¹ ⊗ H_col⁻¹` the upper Cholesky factor of `H⁻¹` is `U_row ⊗ U_col`, so the
/// OBS sweep over a head's weights in row-major order splits in two (the paper's Algorithm 1):
/// each row is quantized by GPTQ's column sweep with `U_col`, and when row `r` is done its whole
/// error `Δ_r = w_r − ŵ_r` (the row as it stood when its sweep began, minus its quantized values)
/// is compensated in the head's later rows through `U_row`:
///
///     W[r', :] −= (U_row[r, r'] / U_row[r, r]) · Δ_r,    r' > r
///
/// (the Kronecker form of `e · U[j, :]`: the GPTQ errors of row `r`, `e_j = (w_j − ŵ_j)/U_col[j, j]`,
/// times `U_col` give back `Δ_r`). Heads are independent, and row `r` of every head is swept at
/// once (the paper's head-wise simultaneous quantization) when they share `U_col`.
///
/// Everything else is GPTQ's (``GPTQ``): outliers, dead columns, dampening of `H_col` (and of
/// each `H_row`, `λ = damp · mean diag`), act-order over the columns, group
/// fits on the error-updated weights when the sweep first reaches them. With `H_row = I` there is no
/// compensation across rows and BoA equals GPTQ with `H_col`.
public enum BoA {
    /// Quantizes `weights` (row-major in `info.shape`, rows = outputs in the decision's matrix
    /// view) with the attention-aware Hessians `hessians`, as `decision` says.
    /// - Throws: ``BoAError`` or ``GPTQError``.
    public static func quantize(
        _ weights: UnsafeBufferPointer<Float>, info: TensorInfo, hessians: AttentionAwareHessians,
        decision: QuantizationDecision, options: GPTQOptions = GPTQOptions(), columnImportance: [Float]? = nil
    ) throws -> QuantizedTensor {
        precondition(weights.count == info.elementCount, "BoA: \(weights.count) values for \(info.elementCount) elements")
        guard decision.transform == nil else { throw GPTQError.rotated(tensor: info.name) }
        let layout = decision.layout(for: info)
        let (rows, columns) = layout.matrixShape(of: info)
        let heads = hessians.heads
        guard heads >= 1, rows % heads == 0 else {
            throw BoAError.hessianShape(tensor: info.name, detail: "\(rows) output rows do not split into \(heads) heads")
        }
        let headSize = rows / heads
        guard hessians.columns.count == 1 || hessians.columns.count == heads,
              hessians.columns.allSatisfy({ $0.count == columns * columns })
        else {
            throw BoAError.hessianShape(
                tensor: info.name, detail: "H_col must be 1 or \(heads) matrices of \(columns)×\(columns)")
        }
        if let rowHessians = hessians.rows, rowHessians.count != heads || rowHessians.contains(where: { $0.count != headSize * headSize }) {
            throw BoAError.hessianShape(tensor: info.name, detail: "H_row must be \(heads) matrices of \(headSize)×\(headSize)")
        }
        var solver = Solver(
            weights, info: info, layout: layout, decision: decision, options: options, columnImportance: columnImportance)
        try solver.runBoA(hessians, headSize: headSize, name: info.name)
        return solver.result(info: info)
    }

    /// The attention-aware objective of a quantized head-structured weight:
    /// `Σ_h tr(H_row,h · ΔW_h · H_col,h · ΔW_hᵀ)` with `ΔW = W − Ŵ` (`rows × columns`, row-major),
    /// `vec(ΔW_h)ᵀ (H_row,h ⊗ H_col,h) vec(ΔW_h)`: the second-order attention-output error BoA
    /// minimises (GPTQ's objective when every `H_row` is the identity).
    public static func objective(difference: [Double], columns: Int, hessians: AttentionAwareHessians) -> Double {
        let rows = difference.count / columns
        let headSize = rows / hessians.heads
        var total = 0.0
        for h in 0..<hessians.heads {
            let hCol = hessians.columns.count == 1 ? hessians.columns[0] : hessians.columns[h]
            // M = ΔW_h · H_col (headSize × columns), then Σ_{r, r'} H_row[r, r'] · ⟨M_r, ΔW_r'⟩.
            var m = [Double](repeating: 0, count: headSize * columns)
            for r in 0..<headSize {
                let row = (h * headSize + r) * columns
                for k in 0..<columns where difference[row + k] != 0 {
                    let d = difference[row + k]
                    for j in 0..<columns { m[r * columns + j] += d * hCol[k * columns + j] }
                }
            }
            for r in 0..<headSize {
                for r2 in 0..<headSize {
                    let weight = hessians.rows.map { $0[h][r * headSize + r2] } ?? (r == r2 ? 1 : 0)
                    if weight == 0 { continue }
                    var dot = 0.0
                    let row2 = (h * headSize + r2) * columns
                    for j in 0..<columns { dot += m[r * columns + j] * difference[row2 + j] }
                    total += weight * dot
                }
            }
        }
        return total
    }
}

extension Solver {
    /// BoA's sweep (see ``BoA``): GPTQ per row with the head's `U_col`, each finished row's error
    /// compensated in the head's later rows through `U_row`.
    mutating func runBoA(_ hessians: AttentionAwareHessians, headSize: Int, name: String) throws {
        selectOutliers()
        let heads = hessians.heads
        let headRows = { (h: Int) in Array((h * headSize)..<((h + 1) * headSize)) }
        // One column factor per distinct H_col: shared by every head, or one per head.
        let shared = hessians.columns.count == 1
        var factors: [ColumnFactor] = []
        for (i, hCol) in hessians.columns.enumerated() {
            factors.append(try columnFactor(hCol, rows: shared ? Array(0..<rows) : headRows(i), name: name))
        }
        // Groups can follow the act-order only when every row is swept in the same order.
        if factors.allSatisfy({ $0.order == factors[0].order }) { adoptGroups(following: factors[0].order) }
        if factors[0].staticGroups {
            for g in 0..<groupsPerRow { fitGroup(g, rows: Array(0..<rows)) }
        }
        guard let rowHessians = hessians.rows else {
            // H_row = I: no compensation across rows, GPTQ with each head's H_col.
            if shared {
                sweep(factors[0], rows: Array(0..<rows))
            } else {
                for h in 0..<heads { sweep(factors[h], rows: headRows(h)) }
            }
            return
        }
        let rowFactors = try rowHessians.map { try Self.rowFactor($0, size: headSize, damp: options.damp, name: name) }
        let n = columns
        // Row r of every head sharing a column factor is swept together.
        let sweeps: [(factor: Int, heads: [Int])] = shared ? [(0, Array(0..<heads))] : (0..<heads).map { ($0, [$0]) }
        var before = [Double](repeating: 0, count: heads * n)
        for r in 0..<headSize {
            for (factor, group) in sweeps {
                let rowSet = group.map { $0 * headSize + r }
                for (i, row) in rowSet.enumerated() {
                    for c in 0..<n { before[i * n + c] = work[row * n + c] }
                }
                sweep(factors[factor], rows: rowSet)
                for (i, h) in group.enumerated() {
                    let row = rowSet[i]
                    let u = rowFactors[h]
                    let pivot = u[r * headSize + r]
                    // Δ_r = (row before its sweep) − (its final values), then the later rows.
                    for c in 0..<n { before[i * n + c] -= Double(reconstruction[row * n + c]) }
                    for later in (r + 1)..<headSize {
                        let coefficient = u[r * headSize + later] / pivot
                        if coefficient == 0 { continue }
                        let target = (h * headSize + later) * n
                        for c in 0..<n { work[target + c] -= coefficient * before[i * n + c] }
                    }
                }
            }
        }
    }

    /// `chol(H_row⁻¹)` (upper) of one head's output-side Hessian, dead rows (`H_rr = 0`) set to 1
    /// and dampened by `damp · mean diag` as `H_col` is.
    static func rowFactor(_ hessian: [Double], size: Int, damp: Double, name: String) throws -> [Double] {
        var h = hessian
        for r in 0..<size where h[r * size + r] == 0 { h[r * size + r] = 1 }
        var diagonalSum = 0.0
        for r in 0..<size { diagonalSum += h[r * size + r] }
        let lambda = damp * diagonalSum / Double(max(size, 1))
        for r in 0..<size { h[r * size + r] += lambda }
        return try upperCholeskyOfInverse(h, n: size, name: name, damp: damp)
    }
}
