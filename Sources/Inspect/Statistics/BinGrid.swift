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

    /// The Floats whose bin is `bin`: the closed interval from the least to the greatest (`nil`
    /// when no Float lands there). ``bin(of:)`` never decreases as `x` grows, so its members are
    /// one run of consecutive Floats; both ends are found by bisection on the Float ordering, with
    /// ``bin(of:)`` itself as the judge, so the interval agrees with it exactly.
    func floatRange(ofBin bin: Int) -> ClosedRange<Float>? {
        // Floats from just below the range to just above it, as ordered integer keys.
        let low = Float(lower).nextDown.nextDown, high = Float(upper).nextUp.nextUp
        func atLeast(_ b: Int, _ x: Float) -> Bool {
            let v = Double(x)
            if v < lower { return false }
            if v > upper { return true }
            return (self.bin(of: v) ?? 0) >= b
        }
        // The first key in [lo, hi] whose Float satisfies `predicate` (hi + 1 when none does).
        func first(_ predicate: (Float) -> Bool) -> Int64 {
            var lo = Self.key(low), hi = Self.key(high) + 1
            while lo < hi {
                let mid = lo + (hi - lo) / 2
                if predicate(Self.float(mid)) { hi = mid } else { lo = mid + 1 }
            }
            return lo
        }
        let start = first { atLeast(bin, $0) }, end = first { atLeast(bin + 1, $0) } - 1
        guard start <= end else { return nil }
        return Self.float(start)...Self.float(end)
    }

    /// A Float's position in the order of Floats (−0 just before +0), as an integer.
    static func key(_ x: Float) -> Int64 {
        let bits = Int64(x.bitPattern)
        return x.sign == .minus ? -(bits & 0x7FFF_FFFF) - 1 : bits
    }

    /// The Float at an ordered position (the inverse of ``key(_:)``).
    static func float(_ key: Int64) -> Float {
        key < 0 ? Float(bitPattern: UInt32(truncatingIfNeeded: -(key + 1)) | 0x8000_0000) : Float(bitPattern: UInt32(truncatingIfNeeded: key))
    }

    /// The lower edge of `bin`.
    func edge(_ bin: Int) -> Double { lower + (upper - lower) * Double(bin) / Double(bins) }
}

/// A few closed Float intervals, tested eight values at a time.
struct FloatIntervals: Sendable {
    let lows: [Float]
    let highs: [Float]

    init(_ ranges: [ClosedRange<Float>?]) {
        let kept = ranges.compactMap { $0 }
        lows = kept.map(\.lowerBound)
        highs = kept.map(\.upperBound)
    }

    /// Calls `body` for every value of `values` inside one of the intervals, in order (and
    /// possibly for a few neighbours of such values: `body` must check membership itself).
    @inline(__always)
    func forEachMember(of values: UnsafeBufferPointer<Float>, _ body: (Float) -> Void) {
        guard !lows.isEmpty, let base = values.baseAddress else { return }
        let raw = UnsafeRawPointer(base)
        let n = values.count
        var i = 0
        lows.withUnsafeBufferPointer { lows in
            highs.withUnsafeBufferPointer { highs in
                while i + 8 <= n {
                    let x = raw.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self)
                    var hit = SIMDMask<SIMD8<Int32>>(repeating: false)
                    for k in 0..<lows.count {
                        hit .|= (x .>= SIMD8(repeating: lows[k])) .& (x .<= SIMD8(repeating: highs[k]))
                    }
                    if any(hit) {
                        for lane in 0..<8 where hit[lane] { body(x[lane]) }
                    }
                    i += 8
                }
            }
        }
        while i < n {
            body(base[i])
            i += 1
        }
    }
}
