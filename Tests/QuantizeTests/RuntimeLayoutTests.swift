import Foundation
import Testing
import QPKCore
@testable import Quantize

@Suite("Runtime layouts: packing and exact dequantization")
struct RuntimeLayoutTests {
    @Test("word packing is one LSB-first stream: 3-bit codes straddle words and unpack unchanged")
    func wordPacking() {
        let codes: [UInt32] = (0..<64).map { UInt32(($0 * 5 + 3) % 8) }
        var words: [UInt32] = []
        WordPacking.pack(codes, bits: 3, into: &words)
        #expect(words.count == 6)
        // Code 10 occupies stream bits 30...32: its low two bits end word 0, its top bit starts word 1.
        #expect((words[0] >> 30) == codes[10] & 3)
        #expect(words[1] & 1 == codes[10] >> 2)
        let back = words.withUnsafeBufferPointer { WordPacking.unpack($0, bits: 3, first: 0, count: 64) }
        #expect(back == codes)
        let middle = words.withUnsafeBufferPointer { WordPacking.unpack($0, bits: 3, first: 9, count: 3) }
        #expect(middle == Array(codes[9..<12]))
    }

    @Test("GPTQ zero-points are integers in 1...2^bits-1, and codes are computed against them")
    func integerZeros() {
        #expect(ZeroPointDomain.gptqInteger.constrain(7.4, bits: 4) == 7)
        #expect(ZeroPointDomain.gptqInteger.constrain(0.2, bits: 4) == 1)
        #expect(ZeroPointDomain.gptqInteger.constrain(19, bits: 4) == 15)
        var decision = QuantizationRecipe.rtn(bits: 4, groupSize: 32).decision()
        decision.zeroPoints = .gptqInteger
        let values: [Float] = (0..<(8 * 64)).map { Float(($0 * 37) % 101) / 50 - 0.3 }
        let q = TensorQuantizer.quantize(values, info: TensorInfo(name: "l.weight", dtype: .f32, shape: [8, 64]), decision: decision)
        #expect(q.zeros.allSatisfy { Float($0) == Float($0).rounded() && Float($0) >= 1 && Float($0) <= 15 })
    }

    @Test("MLX parts round-trip: the runtime formula reproduces (q − z)·s within fp32 rounding")
    func mlxRoundTrip() throws {
        let info = TensorInfo(name: "l.weight", dtype: .f32, shape: [4, 64])
        let values: [Float] = (0..<256).map { sin(Float($0) * 0.37) }
        let q = TensorQuantizer.quantize(values, info: info, recipe: .rtn(bits: 4, groupSize: 32))
        #expect(RuntimeLayoutEncoding.check(info, layout: .mlx, bits: 4, groupSize: 32) == nil)
        let parts = RuntimeLayoutEncoding.encode(q, layout: .mlx)
        #expect(parts.map(\.info.name) == ["l.weight", "l.scales", "l.biases"])
        #expect(parts.map(\.info.shape) == [[4, 8], [4, 2], [4, 2]])
        let words = parts[0].bytes.withUnsafeBytes { raw in (0..<32).map { raw.load(fromByteOffset: $0 * 4, as: UInt32.self) } }
        func floats(_ bytes: [UInt8]) -> [Float] { bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) } }
        let mlx = words.withUnsafeBufferPointer {
            RuntimeLayoutDequantization.dequantizeMLX(
                weight: $0, scales: floats(parts[1].bytes), biases: floats(parts[2].bytes), scaleDType: .f32,
                out: 4, columns: 64, bits: 4, groupSize: 32)
        }
        let reference = try Dequantizer.floats(.quantized(q), info: info)
        for (a, b) in zip(mlx, reference) { #expect(abs(a - b) <= 1e-6 * max(1, abs(b))) }
    }

    @Test("a layout refuses what it cannot hold: widths the group does not divide, vectors, 5 bits")
    func refusals() {
        #expect(RuntimeLayoutEncoding.check(TensorInfo(name: "a.weight", dtype: .f32, shape: [8, 133]), layout: .mlx, bits: 4, groupSize: 64)
            == .groupDoesNotDivide("a.weight", columns: 133, groupSize: 64))
        #expect(RuntimeLayoutEncoding.check(TensorInfo(name: "a.bias", dtype: .f32, shape: [64]), layout: .gptq, bits: 4, groupSize: 32)
            == .notAMatrixWeight("a.bias"))
        #expect(RuntimeLayoutEncoding.check(TensorInfo(name: "a.weight", dtype: .f32, shape: [64, 64]), layout: .gptq, bits: 5, groupSize: 32)
            == .bits("a.weight", 5, .gptq))
    }
}
