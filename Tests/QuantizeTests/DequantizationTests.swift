import Testing

@testable import Quantize
import QPKCore

@Suite("Dequantization of hostile or inconsistent quantized tensors")
struct DequantizationTests {
    static func tensor(shape: [Int], bits: Int = 4, groupSize: Int = 4, scales: Int = 2, codes: Int = 4, outliers: OutlierSet? = nil) -> QuantizedTensor {
        QuantizedTensor(
            info: TensorInfo(name: "evil", dtype: .f32, shape: shape),
            layout: QuantizationLayout(scheme: .affine, bits: bits, groupSize: groupSize),
            codes: [UInt8](repeating: 0x21, count: codes), scales: [Float16](repeating: 1, count: scales),
            zeros: [Float16](repeating: 0, count: scales), outliers: outliers, method: "test")
    }

    static func fails(_ t: QuantizedTensor, capacity: Int = 8) -> Bool {
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: capacity)
        defer { buffer.deallocate() }
        do {
            try Dequantizer.dequantize(t, into: buffer)
            return false
        } catch { return "\(error)".contains("evil") }
    }

    @Test("a well-formed tensor decodes")
    func valid() throws {
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: 8)
        defer { buffer.deallocate() }
        try Dequantizer.dequantize(Self.tensor(shape: [2, 4]), into: buffer)
        #expect(Array(buffer) == [1, 2, 1, 2, 1, 2, 1, 2])
    }

    @Test("bad widths, group sizes, counts, overflowing shapes and outliers throw instead of trapping")
    func hostile() {
        #expect(Self.fails(Self.tensor(shape: [2, 4], bits: 5)))
        #expect(Self.fails(Self.tensor(shape: [2, 4], bits: 16)))
        #expect(Self.fails(Self.tensor(shape: [2, 4], groupSize: 0)))
        #expect(Self.fails(Self.tensor(shape: [2, 4], scales: 1)))
        #expect(Self.fails(Self.tensor(shape: [2, 4], codes: 3)))
        #expect(Self.fails(Self.tensor(shape: [Int.max / 2, 4])))
        #expect(Self.fails(Self.tensor(shape: [2, 4]), capacity: 7))
        let farRow = OutlierSet(kind: .rows, indices: [5], values: [0, 0, 0, 0], statistic: "x", threshold: 0)
        #expect(Self.fails(Self.tensor(shape: [2, 4], outliers: farRow)))
        let short = OutlierSet(kind: .columns, indices: [1], values: [0], statistic: "x", threshold: 0)
        #expect(Self.fails(Self.tensor(shape: [2, 4], outliers: short)))
        let negative = OutlierSet(kind: .elements, indices: [-1], values: [0], statistic: "x", threshold: 0)
        #expect(Self.fails(Self.tensor(shape: [2, 4], outliers: negative)))
    }
}
