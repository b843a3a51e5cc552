import Foundation
import Testing
@testable import Inspect
import QPKCore
import Formats
import Quantize

/// Every dtype with a float view goes through FloatCodec into the same statistics. The values are
/// exactly representable in each dtype, so numpy's float64 results (in the comments) apply to all.
@Suite("Statistics in every dtype")
struct DTypeStatisticsTests {
    static let unsignedValues: [Float] = [0, 1, 2, 3, 4, 6, 8, 12, -0.0]
    static let signedValues: [Float] = unsignedValues + [-1, -2, -8]
    static let unsignedTypes: [DType] = [.u8, .u16, .u32, .u64]
    static let signedTypes: [DType] = [.f8e4m3, .f8e5m2, .f8e4m3fnuz, .f8e5m2fnuz, .f16, .bf16, .f32, .f64, .i8, .i16, .i32, .i64]

    func statistics(_ values: [Float], as dtype: DType) throws -> TensorStatistics {
        var bytes = [UInt8](repeating: 0, count: dtype.byteCount(elementCount: values.count)!)
        values.withUnsafeBufferPointer { src in bytes.withUnsafeMutableBytes { FloatCodec.encode(src, as: dtype, into: $0) } }
        let reader = MemoryReader()
        reader.add("t", bytes: bytes, dtype: dtype, shape: [values.count])
        return try TensorStatistics.compute(reader: reader, tensor: reader.tensors[0])
    }

    @Test("Signed and floating dtypes", arguments: signedTypes)
    func signed(dtype: DType) throws {
        let s = try statistics(Self.signedValues, as: dtype)
        // np: mean 2.0833333333333335, std 4.9237237489074825, kurtosis 0.10388394070737661,
        // l2 18.520259177452136, percentile [-7.34, 1.5, 11.560000000000002]
        #expect(s.count == 12 && s.min == -8 && s.max == 12 && s.absmax == 12)
        #expect(isClose(s.mean, 2.0833333333333335, relative: 1e-12))
        #expect(isClose(s.std, 4.9237237489074825, relative: 1e-12))
        #expect(isClose(s.kurtosis, 0.10388394070737661, relative: 1e-12))
        #expect(isClose(s.l2Norm, 18.520259177452136, relative: 1e-12))
        #expect(isClose(s.p1, -7.34, relative: 1e-12) && s.p50 == 1.5 && isClose(s.p99, 11.560000000000002, relative: 1e-12))
        #expect(s.zeroCount == 2 && s.subnormalCount == 0 && s.nanCount == 0)
    }

    @Test("Unsigned dtypes", arguments: unsignedTypes)
    func unsigned(dtype: DType) throws {
        let s = try statistics(Self.unsignedValues, as: dtype)
        // np: mean 4.0, std 3.80058475033046, kurtosis -0.3489940828402367, l2 16.55294535724685, [0, 3, 11.68]
        #expect(s.min == 0 && s.max == 12 && s.mean == 4)
        #expect(isClose(s.std, 3.80058475033046, relative: 1e-12))
        #expect(isClose(s.kurtosis, -0.3489940828402367, relative: 1e-12))
        #expect(isClose(s.l2Norm, 16.55294535724685, relative: 1e-12))
        #expect(s.p1 == 0 && s.p50 == 3 && isClose(s.p99, 11.68, relative: 1e-12))
    }

    @Test("BOOL is 0 or 1")
    func bool() throws {
        let s = try statistics([1, 0, 1, 1], as: .bool)
        #expect(s.mean == 0.75 && isClose(s.std, 0.4330127018922193, relative: 1e-12) && s.zeroCount == 1)
    }

    @Test("F8_E8M0 holds powers of two; its 0xFF code is NaN")
    func e8m0() throws {
        let s = try statistics([0.25, 1, 2, 1024, 0x1p-127, .nan], as: .f8e8m0)
        // np on [0.25, 1, 2, 1024, 2**-127]: mean 205.45, std 409.27559174717464
        #expect(s.nanCount == 1 && s.min == 0x1p-127 && s.max == 1024)
        #expect(isClose(s.mean, 205.45, relative: 1e-12) && isClose(s.std, 409.27559174717464, relative: 1e-12))
    }

    @Test("A huge histogram request is clamped, a degenerate range never traps")
    func degenerate() throws {
        let s = try TensorStatistics.compute([1e30, 1e30], histogramBins: 1 << 30)
        #expect(s.histogram?.counts.count == TensorStatistics.maxHistogramBins)
        #expect(s.histogram?.counts.reduce(0, +) == 2 && s.p50 == Double(Float(1e30)))
        let extremes = try TensorStatistics.compute([-.greatestFiniteMagnitude, .greatestFiniteMagnitude, 0], histogramBins: 3)
        #expect(extremes.histogram?.counts == [1, 1, 1] && extremes.p50 == 0)
    }

    @Test("Dtypes without a float view are refused with a named error")
    func notConvertible() {
        let reader = MemoryReader()
        reader.add("c", bytes: [UInt8](repeating: 0, count: 16), dtype: .c64, shape: [2])
        #expect(throws: InspectError.self) { try TensorStatistics.compute(reader: reader, tensor: reader.tensors[0]) }
    }

    @Test("Too few stored bytes are refused, never read past the end")
    func truncated() {
        let reader = MemoryReader()
        reader.add("t", bytes: [0, 0, 0], dtype: .f32, shape: [1])
        #expect(throws: InspectError.unreadableTensor("/tmp/memory.safetensors", "t", "3 bytes stored for 4 expected")) {
            try TensorStatistics.compute(reader: reader, tensor: reader.tensors[0])
        }
    }

    @Test("A quantized tensor is dequantized, outliers included")
    func quantized() throws {
        let outliers = OutlierSet(kind: .elements, indices: [3], values: [100], statistic: "abs", threshold: 10)
        let reader = MemoryReader(format: .qpk)
        reader.add(smallQuantized(outliers: outliers))
        let s = try TensorStatistics.compute(reader: reader, tensor: reader.tensors[0])
        // Values (c + 4r − 8)·0.5 for c in 0..<4, r in 0..<2, with element 3 replaced by 100.
        let values: [Double] = [-4, -3.5, -3, 100, -2, -1.5, -1, -0.5]
        #expect(s.max == 100 && s.min == -4)
        #expect(isClose(s.mean, values.reduce(0, +) / 8, relative: 1e-12))
    }
}
