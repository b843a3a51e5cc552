import QPKCore
import Formats
import Quantize

/// numpy's `allclose`/`isclose` rule for one pair of values.
///
/// Finite pairs are close when |a − b| ≤ atol + rtol·|b| (asymmetric: `b` is the reference,
/// the second checkpoint), evaluated in Double from the stored values. Infinities are close only
/// to an infinity of the same sign. NaN is close to nothing, unless `equalNaN` is set, when
/// NaN is close to NaN (numpy's `equal_nan`). Defaults are numpy's: rtol 1e-5, atol 1e-8.
public struct Tolerance: Sendable, Hashable, Codable {
    public var relative: Double
    public var absolute: Double
    public var equalNaN: Bool

    public init(relative: Double = 1e-5, absolute: Double = 1e-8, equalNaN: Bool = false) {
        self.relative = relative
        self.absolute = absolute
        self.equalNaN = equalNaN
    }

    enum CodingKeys: String, CodingKey {
        case relative = "rtol"
        case absolute = "atol"
        case equalNaN = "equal_nan"
    }

    /// Checks that both tolerances are finite and non-negative (a negative or NaN tolerance
    /// would make every tensor "different", silently).
    /// - Throws: ``UsageError`` (rule `invalid_number`) naming `--atol` or `--rtol`.
    public func validate() throws {
        try UsageError.requireNumber(absolute, atLeast: 0, option: "--atol")
        try UsageError.requireNumber(relative, atLeast: 0, option: "--rtol")
    }

    /// Whether `a` and `b` are close.
    @inline(__always)
    public func isClose(_ a: Float, _ b: Float) -> Bool {
        if a.isFinite && b.isFinite {
            let x = Double(a), y = Double(b)
            return abs(x - y) <= absolute + relative * abs(y)
        }
        if a.isNaN || b.isNaN { return equalNaN && a.isNaN && b.isNaN }
        return a == b
    }
}
