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

    /// Adds the pairs `(a[i], b[i])`, element `i` being flat index `offset + i`.
    ///
    /// The sums run in four lanes, pair `i` in lane `i mod 4` (four pairs per step, in SIMD when
    /// all eight values are finite), and the lanes are added at the end of the chunk; chunks are
    /// fixed-size, so the result does not depend on the thread count. The worst pair is the first
    /// of largest |a − b| in element order, as a one-by-one scan finds it.
    mutating func add(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>, offset: Int, tolerance: Tolerance) {
        typealias V = SIMD4<Double>
        let n = min(a.count, b.count)
        guard n > 0, let pa = a.baseAddress, let pb = b.baseAddress else { return }
        let ra = UnsafeRawPointer(pa), rb = UnsafeRawPointer(pb)
        var a2 = V(), b2 = V(), ab = V(), d2 = V(), sumAbsolute = V()
        var outside = V()  // counts, exact in Double
        var finite = 0
        let big = SIMD4<Float>(repeating: .greatestFiniteMagnitude)
        let absolute = V(repeating: tolerance.absolute), relative = V(repeating: tolerance.relative)
        var i = 0
        while i + 4 <= n {
            let x = ra.loadUnaligned(fromByteOffset: i &* 4, as: SIMD4<Float>.self)
            let y = rb.loadUnaligned(fromByteOffset: i &* 4, as: SIMD4<Float>.self)
            let bounded = (x .>= -big) .& (x .<= big) .& (y .>= -big) .& (y .<= big)
            if all(bounded) {
                let dx = V(x), dy = V(y)
                let d = dx - dy
                let ad = d.replacing(with: -d, where: d .< 0)
                a2 += dx * dx
                b2 += dy * dy
                ab += dx * dy
                d2 += d * d
                sumAbsolute += ad
                finite += 4
                let nonzero = ad .> 0
                if any(nonzero) {
                    allEqual = false
                    let magnitude = dy.replacing(with: -dy, where: dy .< 0)
                    outside += V().replacing(with: 1, where: nonzero .& (ad .> absolute + relative * magnitude))
                    // (SIMD's `max()` is a generic call here; the lanes are finite.)
                    let largest = Swift.max(Swift.max(ad[0], ad[1]), Swift.max(ad[2], ad[3]))
                    if largest > maxAbs || largest > (worst?.score ?? 0) {
                        for lane in 0..<4 where ad[lane] > 0 {
                            if ad[lane] > maxAbs { maxAbs = ad[lane] }
                            if ad[lane] > (worst?.score ?? 0) { worst = (offset + i + lane, x[lane], y[lane], ad[lane]) }
                        }
                    }
                }
            } else {
                for lane in 0..<4 {
                    single(pa[i + lane], pb[i + lane], index: offset + i + lane, lane: lane, tolerance: tolerance,
                           finite: &finite, a2: &a2, b2: &b2, ab: &ab, d2: &d2, sumAbsolute: &sumAbsolute)
                }
            }
            i += 4
        }
        while i < n {
            single(pa[i], pb[i], index: offset + i, lane: i & 3, tolerance: tolerance,
                   finite: &finite, a2: &a2, b2: &b2, ab: &ab, d2: &d2, sumAbsolute: &sumAbsolute)
            i += 1
        }
        outOfTolerance += Int(outside[0] + outside[1] + outside[2] + outside[3])
        finitePairs += finite
        sumA2 += a2.sum()
        sumB2 += b2.sum()
        sumAB += ab.sum()
        sumD2 += d2.sum()
        sumAbs += sumAbsolute.sum()
    }

    /// One pair, its sums in `lane`: the general rule, for blocks holding NaN or ±Inf and the tail.
    @inline(__always)
    private mutating func single(
        _ x: Float, _ y: Float, index: Int, lane: Int, tolerance: Tolerance, finite: inout Int,
        a2: inout SIMD4<Double>, b2: inout SIMD4<Double>, ab: inout SIMD4<Double>, d2: inout SIMD4<Double>,
        sumAbsolute: inout SIMD4<Double>
    ) {
        if x.isFinite && y.isFinite {
            let dx = Double(x), dy = Double(y)
            let d = dx - dy
            let ad = abs(d)
            finite += 1
            a2[lane] += dx * dx
            b2[lane] += dy * dy
            ab[lane] += dx * dy
            d2[lane] += d * d
            sumAbsolute[lane] += ad
            if ad > 0 {
                allEqual = false
                if ad > tolerance.absolute + tolerance.relative * abs(dy) { outOfTolerance += 1 }
                if ad > maxAbs { maxAbs = ad }
                if ad > (worst?.score ?? 0) { worst = (index, x, y, ad) }
            }
            return
        }
        let bothNaN = x.isNaN && y.isNaN
        if bothNaN && tolerance.equalNaN { return }
        if !bothNaN && x == y { return }  // infinities of the same sign
        if !bothNaN { allEqual = false }
        outOfTolerance += 1
        nonFiniteMismatches += 1
        if worst?.score != .infinity { worst = (index, x, y, .infinity) }
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
