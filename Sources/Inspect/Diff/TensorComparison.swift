import QPKCore
import Formats
import Quantize

/// How one tensor common to both checkpoints compares.
public struct TensorComparison: Sendable, Codable, Equatable {
    public enum Status: String, Sendable, Codable, Comparable {
        /// Same dtype, same bytes (checked with `memcmp`, before any decoding).
        case identical
        /// Every value equal (e.g. the same numbers in two dtypes), bytes not identical.
        case equal
        /// Every pair within the tolerance, some not equal.
        case close
        /// Some pair out of tolerance.
        case different

        private var rank: Int { [.identical, .equal, .close, .different].firstIndex(of: self)! }
        public static func < (a: Status, b: Status) -> Bool { a.rank < b.rank }
    }

    /// The element where the two tensors differ most.
    public struct Worst: Sendable, Codable, Equatable {
        /// The multi-dimensional index (row-major).
        public var index: [Int]
        public var flatIndex: Int
        public var a: Float
        public var b: Float

        enum CodingKeys: String, CodingKey {
            case index, a, b
            case flatIndex = "flat_index"
        }
    }

    /// The name the tensors were matched under (after `--map`).
    public var name: String
    public var nameA: String
    public var nameB: String
    public var dtypeA: String
    public var dtypeB: String
    public var shape: [Int]
    public var elements: Int
    public var status: Status
    /// max |a − b| over pairs where both are finite.
    public var maxAbs: Double?
    /// mean |a − b| over pairs where both are finite.
    public var meanAbs: Double?
    /// ‖a − b‖ / ‖a‖ over finite pairs (0 when both are zero, +inf when only `a` is).
    public var relativeL2: Double?
    /// Σab / (‖a‖·‖b‖) over finite pairs; 1 for identical tensors; `nil` when a norm is 0.
    public var cosine: Double?
    /// 10·log10(Σa² / Σ(a − b)²) in dB over finite pairs, +inf when equal.
    public var sqnrDB: Double?
    /// Pairs failing the tolerance (NaN/Inf mismatches included).
    public var outOfTolerance: Int
    /// Pairs where one side is NaN or ±Inf and the two are not equal under the tolerance rules.
    public var nonFiniteMismatches: Int
    public var worst: Worst?
    /// Why some metrics are missing (e.g. a dtype without a float view, compared by bytes).
    public var note: String?

    enum CodingKeys: String, CodingKey {
        case name, shape, elements, status, cosine, worst, note
        case nameA = "name_a"
        case nameB = "name_b"
        case dtypeA = "dtype_a"
        case dtypeB = "dtype_b"
        case maxAbs = "max_abs"
        case meanAbs = "mean_abs"
        case relativeL2 = "relative_l2"
        case sqnrDB = "sqnr_db"
        case outOfTolerance = "out_of_tolerance"
        case nonFiniteMismatches = "nonfinite_mismatches"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(nameA, forKey: .nameA)
        try c.encode(nameB, forKey: .nameB)
        try c.encode(dtypeA, forKey: .dtypeA)
        try c.encode(dtypeB, forKey: .dtypeB)
        try c.encode(shape, forKey: .shape)
        try c.encode(elements, forKey: .elements)
        try c.encode(status, forKey: .status)
        try c.encode(maxAbs, forKey: .maxAbs)
        try c.encode(meanAbs, forKey: .meanAbs)
        try c.encode(relativeL2, forKey: .relativeL2)
        try c.encode(cosine, forKey: .cosine)
        try c.encode(sqnrDB, forKey: .sqnrDB)
        try c.encode(outOfTolerance, forKey: .outOfTolerance)
        try c.encode(nonFiniteMismatches, forKey: .nonFiniteMismatches)
        try c.encode(worst, forKey: .worst)
        try c.encode(note, forKey: .note)
    }

    /// Whether the dtypes differ.
    public var dtypeChanged: Bool { dtypeA != dtypeB }
}

/// Sums over one chunk of pairs, merged across chunks. Products of two Floats are exact in Double,
/// so the sums carry only the accumulation error of Double.
struct PairAccumulator: Sendable {
    var finitePairs = 0
    var sumA2 = 0.0
    var sumB2 = 0.0
    var sumAB = 0.0
    var sumD2 = 0.0
    var sumAbs = 0.0
    var maxAbs = 0.0
    var allEqual = true
    var outOfTolerance = 0
    var nonFiniteMismatches = 0
    /// The flat index and values of the worst pair (a non-finite mismatch beats any finite one).
    var worst: (index: Int, a: Float, b: Float, score: Double)?

    mutating func add(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>, offset: Int, tolerance: Tolerance) {
        var s = (a2: 0.0, b2: 0.0, ab: 0.0, d2: 0.0, abs: 0.0)
        var finite = 0
        for i in 0..<a.count {
            let x = a[i], y = b[i]
            if x.isFinite && y.isFinite {
                let dx = Double(x), dy = Double(y)
                let d = dx - dy
                let ad = abs(d)
                finite += 1
                s.a2 += dx * dx
                s.b2 += dy * dy
                s.ab += dx * dy
                s.d2 += d * d
                s.abs += ad
                if ad > 0 {
                    allEqual = false
                    if ad > tolerance.absolute + tolerance.relative * abs(dy) { outOfTolerance += 1 }
                    if ad > maxAbs { maxAbs = ad }
                    if ad > (worst?.score ?? 0) { worst = (offset + i, x, y, ad) }
                }
                continue
            }
            let bothNaN = x.isNaN && y.isNaN
            if bothNaN && tolerance.equalNaN { continue }
            if !bothNaN && x == y { continue }  // infinities of the same sign
            if !bothNaN { allEqual = false }
            outOfTolerance += 1
            nonFiniteMismatches += 1
            if worst?.score != .infinity { worst = (offset + i, x, y, .infinity) }
        }
        finitePairs += finite
        sumA2 += s.a2
        sumB2 += s.b2
        sumAB += s.ab
        sumD2 += s.d2
        sumAbs += s.abs
    }

    mutating func merge(_ o: PairAccumulator) {
        finitePairs += o.finitePairs
        sumA2 += o.sumA2
        sumB2 += o.sumB2
        sumAB += o.sumAB
        sumD2 += o.sumD2
        sumAbs += o.sumAbs
        maxAbs = max(maxAbs, o.maxAbs)
        allEqual = allEqual && o.allEqual
        outOfTolerance += o.outOfTolerance
        nonFiniteMismatches += o.nonFiniteMismatches
        if let w = o.worst, w.score > (worst?.score ?? 0) { worst = w }
    }
}
