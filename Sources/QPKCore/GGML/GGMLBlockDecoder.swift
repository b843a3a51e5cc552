/// Turns ggml blocks into `Float` values, block layout by block layout (spec/gguf.md §5).
///
/// Each formula multiplies in the order ggml's reference dequantizers (and the `gguf` Python
/// package's `gguf.quants.dequantize`) do, in single precision and without fused multiply-adds,
/// so the values agree bit for bit: e.g. Q4_K is `(d·sc)·q − (dmin·m)`, never `d·(sc·q)`.
public enum GGMLBlockDecoder {
    /// IQ4_NL's and IQ4_XS's 16 non-uniform code values (`kvalues_iq4nl` in ggml).
    public static let iq4Values: [Int8] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]

    /// Decodes `count` values of `type` from `source` into `destination`.
    /// - Precondition: `type.isDecodable`, `count` is a whole number of blocks,
    ///   `source` holds `type.byteCount(elementCount: count)` bytes and `destination` `count` floats.
    public static func decode(
        _ type: GGMLType, _ source: UnsafeRawBufferPointer, count: Int,
        into destination: UnsafeMutableBufferPointer<Float>
    ) {
        precondition(type.isDecodable && count % type.blockSize == 0)
        precondition(source.count >= (type.byteCount(elementCount: count) ?? Int.max) && destination.count >= count)
        guard count > 0, let base = source.baseAddress, let out = destination.baseAddress else { return }
        if let dtype = type.plainDType {
            FloatCodec.decode(source, dtype: dtype, count: count, into: destination)
            return
        }
        let blocks = count / type.blockSize
        let block: (UnsafeRawPointer, UnsafeMutablePointer<Float>) -> Void
        switch type {
        case .q4_0: block = q4_0
        case .q4_1: block = q4_1
        case .q5_0: block = q5_0
        case .q5_1: block = q5_1
        case .q8_0: block = q8_0
        case .q2_K: block = q2_K
        case .q3_K: block = q3_K
        case .q4_K: block = q4_K
        case .q5_K: block = q5_K
        case .q6_K: block = q6_K
        case .iq4_NL: block = iq4_NL
        case .iq4_XS: block = iq4_XS
        default: preconditionFailure("\(type.name) is not decodable")
        }
        for b in 0..<blocks {
            block(base + b * type.typeSize, out + b * type.blockSize)
        }
    }

    @inline(__always) static func half(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
        Float(Float16(bitPattern: UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))))
    }

    /// Value j < 16 is the low nibble of byte j, value j + 16 its high nibble.
    @inline(__always) static func nibble(_ qs: UnsafeRawPointer, _ j: Int) -> Int {
        let byte = Int(qs.load(fromByteOffset: j & 15, as: UInt8.self))
        return j < 16 ? byte & 0x0F : byte >> 4
    }

    /// Q4_0: fp16 d, 16 bytes of nibbles; x = d·(q − 8).
    static func q4_0(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
        let d = half(p, 0)
        for j in 0..<32 { out[j] = d * Float(nibble(p + 2, j) - 8) }
    }

    /// Q4_1: fp16 d, fp16 m, 16 bytes of nibbles; x = d·q + m.
    static func q4_1(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
        let d = half(p, 0), m = half(p, 2)
        for j in 0..<32 { out[j] = d * Float(nibble(p + 4, j)) + m }
    }

    /// The fifth bit of value j: bit j of the little-endian u32 `qh`.
    @inline(__always) static func highBit(_ qh: UInt32, _ j: Int) -> Int { Int((qh >> UInt32(j)) & 1) << 4 }

    /// Q5_0: fp16 d, u32 qh (fifth bits), 16 bytes of nibbles; x = d·(q − 16).
    static func q5_0(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
        let d = half(p, 0)
        let qh = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
        for j in 0..<32 { out[j] = d * Float((nibble(p + 6, j) | highBit(qh, j)) - 16) }
    }

    /// Q5_1: fp16 d, fp16 m, u32 qh, 16 bytes of nibbles; x = d·q + m.
    static func q5_1(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
        let d = half(p, 0), m = half(p, 2)
        let qh = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        for j in 0..<32 { out[j] = d * Float(nibble(p + 8, j) | highBit(qh, j)) + m }
    }

    /// Q8_0: fp16 d, 32 signed bytes; x = q·d.
    static func q8_0(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
        let d = half(p, 0)
        for j in 0..<32 { out[j] = Float(p.load(fromByteOffset: 2 + j, as: Int8.self)) * d }
    }

    /// Q2_K: 16 scale bytes (low nibble scale, high nibble min, one per 16 values), 64 bytes of
    /// 2-bit codes, fp16 d, fp16 dmin. Value 128·h + 32·s + l is bits 2s of byte 32·h + l;
    /// x = (d·sc)·q − (dmin·m).
    static func q2_K(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
        let d = half(p, 80), dmin = half(p, 82)
        for i in 0..<256 {
            let h = i >> 7, s = (i >> 5) & 3, l = i & 31
            let q = (Int(p.load(fromByteOffset: 16 + 32 * h + l, as: UInt8.self)) >> (2 * s)) & 3
            let sc = Int(p.load(fromByteOffset: i >> 4, as: UInt8.self))
            out[i] = (d * Float(sc & 0xF)) * Float(q) - dmin * Float(sc >> 4)
        }
    }

    /// Q3_K's sixteen 6-bit scales from its 12 scale bytes: the low four bits are nibbles of
    /// bytes 0–7 (sub-block i < 8 low nibble of byte i, else high nibble of byte i − 8), the top
    /// two bits come from bytes 8–11 (byte 8 + i % 4, bits 2·(i / 4)).
    @inline(__always) static func q3Scale(_ scales: UnsafeRawPointer, _ i: Int) -> Int {
        let low = Int(scales.load(fromByteOffset: i & 7, as: UInt8.self)) >> (i < 8 ? 0 : 4) & 0xF
        let high = (Int(scales.load(fromByteOffset: 8 + (i & 3), as: UInt8.self)) >> (2 * (i >> 2))) & 3
        return low | high << 4
    }

    /// Q3_K: 32 bytes hmask, 64 bytes of low 2-bit codes, 12 bytes of 6-bit scales, fp16 d.
    /// Value i = 128·h + 32·s + l: low bits 2s of byte 32·h + l; high bit i / 32 of hmask byte l;
    /// q = low − (high ? 0 : 4); x = (d·(sc − 32))·q.
    static func q3_K(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
        let d = half(p, 108)
        for i in 0..<256 {
            let h = i >> 7, s = (i >> 5) & 3, l = i & 31
            let low = (Int(p.load(fromByteOffset: 32 + 32 * h + l, as: UInt8.self)) >> (2 * s)) & 3
            let high = (Int(p.load(fromByteOffset: l, as: UInt8.self)) >> (i >> 5)) & 1
            let q = low - (high == 1 ? 0 : 4)
            out[i] = (d * Float(q3Scale(p + 96, i >> 4) - 32)) * Float(q)
        }
    }

    /// Q4_K's and Q5_K's eight 6-bit scales and mins from 12 bytes (`get_scale_min_k4`):
    /// for j < 4 the low six bits of bytes j and j + 4; for j ≥ 4 a nibble of byte j + 4 plus the
    /// top two bits of bytes j − 4 and j.
    @inline(__always) public static func k4ScaleMin(_ s: UnsafeRawPointer, _ j: Int) -> (scale: Int, min: Int) {
        func b(_ k: Int) -> Int { Int(s.load(fromByteOffset: k, as: UInt8.self)) }
        if j < 4 { return (b(j) & 63, b(j + 4) & 63) }
        return ((b(j + 4) & 0xF) | ((b(j - 4) >> 6) << 4), (b(j + 4) >> 4) | ((b(j) >> 6) << 4))
    }

    /// Q4_K: fp16 d, fp16 dmin, 12 bytes of scales/mins, 128 bytes of nibbles. Sub-block
    /// 2c + n (32 values) is nibble n of bytes 32·c …; x = (d·sc)·q − (dmin·m).
    static func q4_K(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
        let d = half(p, 0), dmin = half(p, 2)
        for sub in 0..<8 {
            let (sc, m) = k4ScaleMin(p + 4, sub)
            let scale = d * Float(sc), minimum = dmin * Float(m)
            let c = sub >> 1, shift = 4 * (sub & 1)
            for l in 0..<32 {
                let q = (Int(p.load(fromByteOffset: 16 + 32 * c + l, as: UInt8.self)) >> shift) & 0xF
                out[32 * sub + l] = scale * Float(q) - minimum
            }
        }
    }

    /// Q5_K: as Q4_K with 32 bytes qh after the scales: the fifth bit of value 32·sub + l is bit
    /// `sub` of qh byte l.
    static func q5_K(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
        let d = half(p, 0), dmin = half(p, 2)
        for sub in 0..<8 {
            let (sc, m) = k4ScaleMin(p + 4, sub)
            let scale = d * Float(sc), minimum = dmin * Float(m)
            let c = sub >> 1, shift = 4 * (sub & 1)
            for l in 0..<32 {
                let low = (Int(p.load(fromByteOffset: 48 + 32 * c + l, as: UInt8.self)) >> shift) & 0xF
                let high = (Int(p.load(fromByteOffset: 16 + l, as: UInt8.self)) >> sub) & 1
                out[32 * sub + l] = scale * Float(low | high << 4) - minimum
            }
        }
    }

    /// Q6_K: 128 bytes ql, 64 bytes qh, 16 signed scales, fp16 d. Value i = 128·h + 32·s + l:
    /// low nibble (s & 1 ? high : low) of ql byte 64·h + 32·(s >> 1) + l, top two bits 2s of qh
    /// byte 32·h + l; x = (d·sc)·(q − 32), one scale per 16 values.
    static func q6_K(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
        let d = half(p, 208)
        for i in 0..<256 {
            let h = i >> 7, s = (i >> 5) & 3, l = i & 31
            let qlByte = Int(p.load(fromByteOffset: 64 * h + 32 * (s & 1) + l, as: UInt8.self))
            let low = (s >> 1) == 0 ? qlByte & 0xF : qlByte >> 4
            let high = (Int(p.load(fromByteOffset: 128 + 32 * h + l, as: UInt8.self)) >> (2 * s)) & 3
            let sc = Float(p.load(fromByteOffset: 192 + (i >> 4), as: Int8.self))
            out[i] = (d * sc) * Float((low | high << 4) - 32)
        }
    }

    /// IQ4_NL: fp16 d, 16 bytes of nibbles indexing ``iq4Values``; x = d·v.
    static func iq4_NL(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
        let d = half(p, 0)
        for j in 0..<32 { out[j] = d * Float(iq4Values[nibble(p + 2, j)]) }
    }

    /// IQ4_XS: fp16 d, u16 scales_h, 4 bytes scales_l, 128 bytes of nibbles. Sub-block ib's
    /// 6-bit scale is nibble ib % 2 of scales_l[ib / 2] plus bits 2·ib of scales_h;
    /// x = (d·(ls − 32))·v.
    static func iq4_XS(_ p: UnsafeRawPointer, _ out: UnsafeMutablePointer<Float>) {
        let d = half(p, 0)
        let scalesH = Int(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
        for ib in 0..<8 {
            let low = (Int(p.load(fromByteOffset: 4 + ib / 2, as: UInt8.self)) >> (4 * (ib & 1))) & 0xF
            let ls = low | ((scalesH >> (2 * ib)) & 3) << 4
            let dl = d * Float(ls - 32)
            for j in 0..<32 { out[32 * ib + j] = dl * Float(iq4Values[nibble(p + 8 + 16 * ib, j)]) }
        }
    }
}
