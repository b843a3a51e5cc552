import QPKCore
import Formats
import Quantize
import Kernels

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

/// Sums over one chunk of pairs, merged across chunks: ``Kernels/PairKernel`` in the build the CPU
/// runs best (``Quantize/KernelDispatch``).
typealias PairAccumulator = Kernels.PairKernel

extension PairAccumulator {
    /// The sums of the pairs `(a[i], b[i])`, element `i` being flat index `offset + i`.
    static func sums(
        _ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>, offset: Int, tolerance: Tolerance
    ) -> PairAccumulator {
        let n = min(a.count, b.count)
        guard n > 0, let pa = a.baseAddress, let pb = b.baseAddress else { return PairAccumulator() }
        return KernelDispatch.pairSums(
            pa, pb, count: n, offset: offset, absolute: tolerance.absolute, relative: tolerance.relative,
            equalNaN: tolerance.equalNaN)
    }
}
