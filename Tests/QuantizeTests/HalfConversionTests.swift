import Testing

@testable import Quantize
import QPKCore

/// The integer fp16 conversions of ``GroupFit`` must round exactly like `Float16(_:)` and widen
/// exactly like `Float(_:)`: every stored scale and zero-point goes through them.
@Suite("fp16 conversions without library calls")
struct HalfConversionTests {
    @Test("widen equals Float(_:) on every fp16 bit pattern")
    func widenIsExact() {
        for bits in 0...UInt16.max {
            let h = Float16(bitPattern: bits)
            let expected = Float(h)
            let actual = GroupFit.widen(h)
            #expect(actual.bitPattern == expected.bitPattern || (actual.isNaN && expected.isNaN), "pattern \(bits)")
        }
    }

    @Test("narrow rounds like Float16(_:) across the finite fp16 range, ties and subnormals included")
    func narrowIsExact() {
        var checked = 0
        func check(_ x: Float) {
            guard !x.isNaN, abs(x) <= 65504 else { return }
            checked += 1
            #expect(GroupFit.narrow(x).bitPattern == Float16(x).bitPattern, "value \(x) (\(x.bitPattern))")
        }
        // A stride through all positive and negative patterns (co-prime with the 2^13 rounding
        // boundary so every low-bit residue occurs).
        var pattern: UInt32 = 0
        while pattern < 0x4780_0000 {
            check(Float(bitPattern: pattern))
            check(-Float(bitPattern: pattern))
            pattern += 4099
        }
        // Exact halfway points, and their neighbours, between consecutive fp16 values.
        for bits in UInt16(0)..<0x7BFF {
            let low = Float(Float16(bitPattern: bits)), high = Float(Float16(bitPattern: bits + 1))
            let middle = (low + high) / 2
            for x in [middle, middle.nextUp, middle.nextDown, low, high] { check(x); check(-x) }
        }
        check(65504)
        check(0x1p-25)
        check(Float(0x1p-24).nextDown)
        #expect(checked > 500_000)
    }
}
