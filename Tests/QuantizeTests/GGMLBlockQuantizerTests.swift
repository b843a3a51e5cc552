import Foundation
import Testing
@testable import Formats
@testable import Quantize
import QPKCore

/// Encodes with qpk's search and decodes with the reader's decoder.
private func roundTrip(_ values: [Float], _ type: GGMLType) -> (bytes: [UInt8], decoded: [Float]) {
    var bytes = [UInt8](repeating: 0, count: type.byteCount(elementCount: values.count)!)
    values.withUnsafeBufferPointer { x in
        bytes.withUnsafeMutableBytes { GGMLBlockQuantizer.encode(x, as: type, into: $0) }
    }
    var decoded = [Float](repeating: 0, count: values.count)
    decoded.withUnsafeMutableBufferPointer { out in
        bytes.withUnsafeBytes { GGMLBlockDecoder.decode(type, $0, count: values.count, into: out) }
    }
    return (bytes, decoded)
}

private func squaredError(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Double {
    zip(a, b).reduce(0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
}

/// ggml's reference rules (ggml-quants.c `quantize_row_*_ref`), decoded: the baseline qpk's
/// search must never lose to, block by block.
private enum GGMLReference {
    static func signedMax(_ x: ArraySlice<Float>) -> Float {
        var amax: Float = 0, m: Float = 0
        for v in x where abs(v) > amax { amax = abs(v); m = v }
        return m
    }

    /// Q4_0 (offset 8) and Q5_0 (offset 16): d = max / −offset, q = trunc(x/d + offset + 0.5).
    static func symmetric(_ x: ArraySlice<Float>, offset: Float) -> [Float] {
        let d = signedMax(x) / -offset
        let id: Float = d == 0 ? 0 : 1 / d
        let stored = Float(Float16(d))
        return x.map { v in
            let q = min(2 * offset - 1, (v * id + offset + 0.5).rounded(.towardZero))
            return stored * (q - offset)
        }
    }

    /// Q8_0: d = absmax / 127, q = round(x/d).
    static func q8_0(_ x: ArraySlice<Float>) -> [Float] {
        let d = abs(signedMax(x)) / 127
        let id: Float = d == 0 ? 0 : 1 / d
        return x.map { Float($0 * id).rounded() * Float(Float16(d)) }
    }

    /// Q4_1: d = (max − min)/15, m = min, q = trunc((x − min)/d + 0.5).
    static func q4_1(_ x: ArraySlice<Float>) -> [Float] {
        let lo = x.min()!, hi = x.max()!
        let d = (hi - lo) / 15
        let id: Float = d == 0 ? 0 : 1 / d
        return x.map { v in
            let q = min(15, ((v - lo) * id + 0.5).rounded(.towardZero))
            return Float(Float16(d)) * q + Float(Float16(lo))
        }
    }
}

private func gaussianRows(_ count: Int, seed: UInt64) -> [Float] {
    var generator = SeededGenerator(seed: seed)
    return generator.weights(count)
}

/// The simple rules of the 256-value types and IQ4_NL, decoded: Q4_K from each sub-block's
/// min-max (minimum ≤ 0), Q6_K from each sub-block's absmax / −32, both with the super-scale
/// from the largest sub-scale and nearest sub-scales and codes; IQ4_NL with d = max / −127.
private enum SimpleRule {
    static func nearest(_ t: Float, _ lo: Float, _ hi: Float) -> Float { min(hi, max(lo, t.rounded())) }

    static func q4_K(_ x: ArraySlice<Float>) -> [Float] {
        let base = x.startIndex
        var scales: [Float] = [], minimums: [Float] = []
        for sub in 0..<8 {
            let block = x[(base + 32 * sub)..<(base + 32 * sub + 32)]
            let lo = min(block.min()!, 0)
            scales.append((block.max()! - lo) / 15)
            minimums.append(-lo)
        }
        let d = Float(Float16(scales.max()! / 63)), dmin = Float(Float16(minimums.max()! / 63))
        var out: [Float] = []
        for sub in 0..<8 {
            let scale = d * (d == 0 ? 0 : nearest(scales[sub] / d, 0, 63))
            let minimum = dmin * (dmin == 0 ? 0 : nearest(minimums[sub] / dmin, 0, 63))
            for v in x[(base + 32 * sub)..<(base + 32 * sub + 32)] {
                let q = scale == 0 ? 0 : nearest((v + minimum) / scale, 0, 15)
                out.append(scale * q - minimum)
            }
        }
        return out
    }

    static func q6_K(_ x: ArraySlice<Float>) -> [Float] {
        let base = x.startIndex
        let scales = (0..<16).map { GGMLReference.signedMax(x[(base + 16 * $0)..<(base + 16 * $0 + 16)]) / -32 }
        var largest: Float = 0
        for s in scales where abs(s) > abs(largest) { largest = s }
        let d = Float(Float16(largest / -128))
        var out: [Float] = []
        for sub in 0..<16 {
            let scale = d * (d == 0 ? 0 : nearest(scales[sub] / d, -128, 127))
            for v in x[(base + 16 * sub)..<(base + 16 * sub + 16)] {
                out.append(scale * (scale == 0 ? 0 : nearest(v / scale, -32, 31)))
            }
        }
        return out
    }

    static func iq4_NL(_ x: ArraySlice<Float>) -> [Float] {
        let d = Float(Float16(GGMLReference.signedMax(x) / -127))
        let values = GGMLBlockDecoder.iq4Values.map(Float.init)
        return x.map { v in
            d * values.min { abs(d * $0 - v) < abs(d * $1 - v) }!
        }
    }
}

@Suite("GGML block quantizers: ggml's layouts, qpk's search, never worse than ggml's rule")
struct GGMLBlockQuantizerTests {
    @Test("Q4_0, Q5_0, Q8_0 and Q4_1 beat or tie ggml's reference rule on every block",
          arguments: [GGMLType.q4_0, .q5_0, .q8_0, .q4_1])
    func neverWorseThanReference(type: GGMLType) {
        let values = gaussianRows(32 * 400, seed: 9)
        let (_, decoded) = roundTrip(values, type)
        var qpkTotal = 0.0, referenceTotal = 0.0
        for b in 0..<400 {
            let block = values[(32 * b)..<(32 * b + 32)]
            let reference: [Float] = switch type {
            case .q4_0: GGMLReference.symmetric(block, offset: 8)
            case .q5_0: GGMLReference.symmetric(block, offset: 16)
            case .q8_0: GGMLReference.q8_0(block)
            default: GGMLReference.q4_1(block)
            }
            let qpk = squaredError(block, decoded[(32 * b)..<(32 * b + 32)])
            let ggml = squaredError(block, reference[...])
            #expect(qpk <= ggml * (1 + 1e-6), "block \(b): qpk \(qpk) > ggml \(ggml)")
            qpkTotal += qpk
            referenceTotal += ggml
        }
        #expect(qpkTotal < referenceTotal * 0.97, "\(type.name): the search should gain over the reference overall")
    }

    @Test("Q4_K, Q6_K and IQ4_NL beat or tie their simple rule on every block",
          arguments: [GGMLType.q4_K, .q6_K, .iq4_NL])
    func superBlocks(type: GGMLType) {
        let n = type.blockSize, blocks = 60
        let values = gaussianRows(n * blocks, seed: 3)
        let (_, decoded) = roundTrip(values, type)
        var qpkTotal = 0.0, simpleTotal = 0.0
        for b in 0..<blocks {
            let block = values[(n * b)..<(n * b + n)]
            let simple: [Float] = switch type {
            case .q4_K: SimpleRule.q4_K(block)
            case .q6_K: SimpleRule.q6_K(block)
            default: SimpleRule.iq4_NL(block)
            }
            let qpk = squaredError(block, decoded[(n * b)..<(n * b + n)])
            let rule = squaredError(block, simple[...])
            #expect(qpk <= rule * (1 + 1e-6), "\(type.name) block \(b): qpk \(qpk) > simple rule \(rule)")
            qpkTotal += qpk
            simpleTotal += rule
        }
        #expect(qpkTotal < simpleTotal * 0.97, "\(type.name): the search should gain over the simple rule overall")
    }

    @Test("a Q4_0 block that is exactly representable is stored exactly, in ggml's nibble order")
    func exactQ4_0() {
        // x_j = (c_j) · 0.5 with c_j = j − 8 for j < 16 and 7 − (j − 16) for j ≥ 16.
        let codes = (0..<32).map { $0 < 16 ? $0 - 8 : 7 - ($0 - 16) }
        let values = codes.map { Float($0) * 0.5 }
        let (bytes, decoded) = roundTrip(values, .q4_0)
        #expect(decoded == values)
        // Low nibble: value j, high nibble: value j + 16.
        let d = Float(Float16(bitPattern: UInt16(bytes[0]) | UInt16(bytes[1]) << 8))
        for j in 0..<16 {
            #expect(Float(Int(bytes[2 + j] & 0xF) - 8) * d == values[j])
            #expect(Float(Int(bytes[2 + j] >> 4) - 8) * d == values[j + 16])
        }
    }

    @Test("zero, constant and non-finite blocks encode without trapping", arguments: [GGMLType.q4_0, .q4_1, .q5_0, .q8_0, .q4_K, .q6_K, .iq4_NL])
    func degenerate(type: GGMLType) {
        let n = type.blockSize
        #expect(roundTrip([Float](repeating: 0, count: n), type).decoded == [Float](repeating: 0, count: n))
        let constant = roundTrip([Float](repeating: 0.25, count: n), type).decoded
        #expect(constant.allSatisfy { abs($0 - 0.25) < 0.02 }, "\(type.name): \(constant.prefix(4))")
        var hostile = gaussianRows(n, seed: 1)
        hostile[0] = .nan
        hostile[1] = .infinity
        _ = roundTrip(hostile, type)
    }
}
