import Testing
import QPKCore
import Formats
import Quantize
import Inspect

/// Whether `actual` is within `relative` of `expected` (or both are exactly 0).
func isClose(_ actual: Double?, _ expected: Double, relative: Double = 1e-6) -> Bool {
    guard let actual else { return false }
    if actual == expected { return true }
    return abs(actual - expected) <= relative * max(abs(expected), abs(actual))
}

/// The deterministic 1M-element array of `numpy_expected.py` ("offset1M"): values near 1e4 with
/// unit-scale noise and a sparse heavy tail every 997th element.
func offsetMillion() -> [Float] {
    (0..<1_000_000).map { i -> Float in
        let u = Double((UInt64(i) &* 2_654_435_761) & 0xFFFF_FFFF) / 4_294_967_296.0
        return Float(10000.0 + (u - 0.5) + (i % 997 == 0 ? 60.0 * (u - 0.5) : 0.0))
    }
}

/// The "crowded" array of `numpy_expected.py`: 1.5M tiny values and two outliers at ±1000.
func crowded() -> [Float] {
    var values = (0..<1_500_000).map { j -> Float in
        let w = Double((UInt64(j) &* 40503 &+ 12345) % 65521) / 65521.0
        return Float(1e-3 * (w - 0.5))
    }
    values[7] = 1000
    values[1_000_003] = -1000
    return values
}
