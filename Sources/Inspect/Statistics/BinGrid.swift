import QPKCore
import Formats
import Quantize

/// Equal-width bins over a closed range `[lower, upper]`: bin `i` holds `lower + i·w ≤ x < lower + (i+1)·w`,
/// and the last bin also holds `upper` (numpy.histogram's convention). The bin of `x` is computed
/// in Double as `⌊(x − lower) · bins / (upper − lower)⌋`, clamped to the grid.
struct BinGrid: Sendable, Equatable {
    let lower: Double
    let upper: Double
    let bins: Int
    let scale: Double

    /// A grid of `bins` bins. When `lower == upper` the range is widened to `lower ± 0.5`, as numpy does.
    init(lower: Double, upper: Double, bins: Int) {
        let (lo, hi) = lower < upper ? (lower, upper) : (lower - 0.5, upper + 0.5)
        self.lower = lo
        self.upper = hi
        self.bins = max(bins, 1)
        scale = Double(self.bins) / (hi - lo)
    }

    /// The bin of `x`, or `nil` if `x` is outside the range (or NaN).
    @inline(__always)
    func bin(of x: Double) -> Int? {
        guard x >= lower, x <= upper else { return nil }
        let t = (x - lower) * scale
        // `t` is NaN or huge only for degenerate ranges (width 0 or overflowing): last bin.
        guard t < Double(bins) else { return bins - 1 }
        return Int(t)
    }

    /// The lower edge of `bin`.
    func edge(_ bin: Int) -> Double { lower + (upper - lower) * Double(bin) / Double(bins) }
}
