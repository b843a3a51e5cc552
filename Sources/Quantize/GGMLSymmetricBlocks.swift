import QPKCore

/// The 32-value blocks with one fp16 scale and no minimum: Q4_0, Q5_0, Q8_0 and IQ4_NL
/// (layouts in spec/gguf.md §5, decoded by ``GGMLBlockDecoder``).
enum GGMLSymmetricBlocks {
    typealias A = GGMLArithmetic

    /// Q4_0: `x̂ = d·(q − 8)`; d from ``GGMLArithmetic/bestSymmetricScale``, q the nearest code.
    static func q4_0(_ x: UnsafePointer<Float>, _ out: UnsafeMutableRawPointer) {
        let d = A.bestSymmetricScale(x, 32, lo: -8, hi: 7)
        A.storeHalf(d, out, 0)
        packNibbles(out + 2) { code(x[$0], scale: d, lo: -8, hi: 7) + 8 }
    }

    /// Q5_0: `x̂ = d·(q − 16)`; the fifth bits go to the little-endian u32 `qh` (bit j for value j).
    static func q5_0(_ x: UnsafePointer<Float>, _ out: UnsafeMutableRawPointer) {
        let d = A.bestSymmetricScale(x, 32, lo: -16, hi: 15)
        A.storeHalf(d, out, 0)
        var qh: UInt32 = 0
        for j in 0..<32 { qh |= UInt32((code(x[j], scale: d, lo: -16, hi: 15) + 16) >> 4) << UInt32(j) }
        out.storeBytes(of: qh.littleEndian, toByteOffset: 2, as: UInt32.self)
        packNibbles(out + 6) { (code(x[$0], scale: d, lo: -16, hi: 15) + 16) & 0xF }
    }

    /// Q8_0: `x̂ = d·q`, q a signed byte; ggml's rule is `d = absmax / 127`.
    static func q8_0(_ x: UnsafePointer<Float>, _ out: UnsafeMutableRawPointer) {
        let amax = abs(A.signedAbsMax(x, 32))
        let d = A.bestSymmetricScale(x, 32, lo: -128, hi: 127, reference: amax / 127)
        A.storeHalf(d, out, 0)
        for j in 0..<32 { out.storeBytes(of: Int8(code(x[j], scale: d, lo: -128, hi: 127)), toByteOffset: 2 + j, as: Int8.self) }
    }

    /// IQ4_NL: `x̂ = d·v[q]` with the 16 values of ``GGMLBlockDecoder/iq4Values``. Candidates are
    /// `m/−127` (m the signed absmax: the values' end, ggml's starting point), `m/−127·f` and
    /// `m/113·f` over the factor grid, then two least-squares refits `Σ x·v / Σ v²`.
    static func iq4_NL(_ x: UnsafePointer<Float>, _ out: UnsafeMutableRawPointer) {
        let d = bestNonUniformScale(x, 32)
        A.storeHalf(d, out, 0)
        let inverse: Float = d == 0 ? 0 : 1 / d
        midpoints.withUnsafeBufferPointer { m in
            packNibbles(out + 2) { j in d == 0 ? 8 : nearestValueIndex(x[j] * inverse, m.baseAddress!) }
        }
    }

    static let values: [Float] = GGMLBlockDecoder.iq4Values.map(Float.init)
    static let midpoints: [Float] = (0..<15).map { (values[$0] + values[$0 + 1]) / 2 }

    /// The index of the value nearest `t`: the number of midpoints below `t`, by binary search
    /// over the 15 sorted midpoints `m`.
    @inline(__always) static func nearestValueIndex(_ t: Float, _ m: UnsafePointer<Float>) -> Int {
        var i = t > m[7] ? 8 : 0
        i += t > m[i + 3] ? 4 : 0
        i += t > m[i + 1] ? 2 : 0
        i += t > m[i] ? 1 : 0
        return i
    }

    static func nonUniformError(_ x: UnsafePointer<Float>, _ n: Int, scale: Float) -> (error: Float, xv: Float, vv: Float) {
        guard scale != 0 else {
            var e: Float = 0
            for i in 0..<n { e += x[i] * x[i] }
            return (e, 0, 0)
        }
        let inverse = 1 / scale
        var e: Float = 0, xv: Float = 0, vv: Float = 0
        values.withUnsafeBufferPointer { v in
            midpoints.withUnsafeBufferPointer { m in
                for i in 0..<n {
                    let value = v[nearestValueIndex(x[i] * inverse, m.baseAddress!)]
                    let r = x[i] - scale * value
                    e += r * r
                    xv += x[i] * value
                    vv += value * value
                }
            }
        }
        return (e, xv, vv)
    }

    static func bestNonUniformScale(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        let m = A.signedAbsMax(x, n)
        guard m != 0, m.isFinite else { return 0 }
        var best = A.half(m / -127)
        var (bestError, xv, vv) = nonUniformError(x, n, scale: best)
        @inline(__always) func consider(_ d: Float) {
            let s = A.half(d)
            guard s != 0, s.isFinite else { return }
            let result = nonUniformError(x, n, scale: s)
            if result.error < bestError {
                best = s
                (bestError, xv, vv) = result
            }
        }
        for f in A.scaleFactors {
            consider(m / -127 * f)
            consider(m / 113 * f)
        }
        for _ in 0..<2 where vv > 0 { consider(xv / vv) }
        return best
    }

    /// The nearest code `c ∈ [lo, hi]` for `x / scale` (0 for a zero scale: ggml's code for an
    /// all-zero block).
    @inline(__always) static func code(_ x: Float, scale: Float, lo: Float, hi: Float) -> Int {
        scale == 0 ? 0 : Int(A.nearest(x * (1 / scale), lo, hi))
    }

    /// 32 four-bit codes: value j in the low nibble of byte j, value j + 16 in its high nibble.
    @inline(__always) static func packNibbles(_ out: UnsafeMutableRawPointer, _ code: (Int) -> Int) {
        for j in 0..<16 {
            out.storeBytes(of: UInt8(code(j) & 0xF | (code(j + 16) & 0xF) << 4), toByteOffset: j, as: UInt8.self)
        }
    }
}
