import Foundation
import Testing
@testable import Inspect
import QPKCore
import Formats
import Quantize

/// Statistics against the numpy values printed by `Support/numpy_expected.py`.
@Suite("TensorStatistics matches numpy")
struct StatisticsReferenceTests {
    @Test("NaN and ±Inf are counted apart; everything else covers the finite values")
    func mixedSpecialValues() throws {
        let values: [Float] = [1.5, -2.25, 0, 3, .nan, .infinity, -.infinity, 1e-40, -0.0, 7.75]
        let s = try TensorStatistics.compute(values, histogramBins: 4)
        #expect(s.count == 10)
        #expect(s.nanCount == 1 && s.positiveInfinityCount == 1 && s.negativeInfinityCount == 1)
        #expect(s.zeroCount == 2)
        #expect(s.subnormalCount == 1)
        #expect(s.min == -2.25 && s.max == 7.75 && s.absmax == 7.75)
        #expect(isClose(s.mean, 1.4285714285714286, relative: 1e-12))
        #expect(isClose(s.std, 2.9782373913413407, relative: 1e-12))
        #expect(isClose(s.l2Norm, 8.739279146474267, relative: 1e-12))
        #expect(isClose(s.kurtosis, 0.2657695349421805, relative: 1e-12))
        #expect(isClose(s.p1, -2.115, relative: 1e-12))
        #expect(isClose(s.p50, 9.99994610111476e-41, relative: 1e-12))
        #expect(isClose(s.p99, 7.464999999999998, relative: 1e-12))
        #expect(s.histogram?.counts == [4, 1, 1, 1])
        #expect(s.beyond3Sigma == 0 && s.beyond6Sigma == 0)
    }

    @Test("An empty tensor has counts of zero and no value statistics")
    func empty() throws {
        let s = try TensorStatistics.compute([Float](), histogramBins: 8)
        #expect(s.count == 0 && s.finiteCount == 0)
        #expect(s.min == nil && s.mean == nil && s.std == nil && s.p50 == nil && s.kurtosis == nil)
        #expect(s.histogram == nil)
    }

    @Test("A scalar has zero spread, undefined kurtosis, and every percentile equal to it")
    func scalar() throws {
        let s = try TensorStatistics.compute([42.5])
        #expect(s.count == 1 && s.min == 42.5 && s.max == 42.5 && s.mean == 42.5 && s.std == 0)
        #expect(s.l2Norm == 42.5 && s.kurtosis == nil)
        #expect(s.p1 == 42.5 && s.p50 == 42.5 && s.p99 == 42.5)
    }

    @Test("A constant tensor's histogram spans min ± 0.5 like numpy")
    func constant() throws {
        let s = try TensorStatistics.compute([Float](repeating: 3, count: 10), histogramBins: 3)
        #expect(s.histogram == .init(lower: 2.5, upper: 3.5, counts: [0, 10, 0]))
        #expect(isClose(s.l2Norm, 9.486832980505138, relative: 1e-12))
    }

    @Test("1M values near 1e4: moments stay exact where float32 naive sums drift to 10130.7")
    func offsetMillionElements() throws {
        let s = try TensorStatistics.compute(offsetMillion(), histogramBins: 8)
        #expect(s.min == 9969.5 && s.max == 10030.4189453125)
        #expect(isClose(s.mean, 9999.999943649414, relative: 1e-12))
        #expect(isClose(s.std, 0.6283755946017976))
        #expect(isClose(s.l2Norm, 9999999.96339221))
        #expect(isClose(s.kurtosis, 1113.7050769528003))
        #expect(s.beyond3Sigma == 942 && s.beyond6Sigma == 880)
        #expect(s.p1 == 9999.509765625 && s.p50 == 10000.0 && s.p99 == 10000.490234375)
        #expect(s.histogram?.counts == [126, 125, 127, 459134, 540112, 125, 124, 127])
    }

    @Test("Percentiles stay exact when more than a million values crowd one histogram bin")
    func crowdedBin() throws {
        let s = try TensorStatistics.compute(crowded())
        #expect(s.min == -1000 && s.max == 1000)
        #expect(isClose(s.mean, -7.609113793250799e-09, relative: 1e-4))
        #expect(isClose(s.std, 1.1547005744636445))
        #expect(isClose(s.kurtosis, 749996.9062500043))
        #expect(isClose(s.p1, -0.0004900032072328031, relative: 1e-12))
        #expect(isClose(s.p50, -7.631141052399926e-09, relative: 1e-12))
        #expect(isClose(s.p99, 0.0004899879568256438, relative: 1e-12))
        #expect(s.beyond3Sigma == 2 && s.beyond6Sigma == 2)
    }

    @Test("f16 input through FloatCodec: f16 subnormals counted against f16's smallest normal")
    func float16() throws {
        let source: [Float] = [0.5, -1.25, 65504, 1e-6, -3e-7, 0, .infinity, 2.0009765625, 0.1]
        let bytes = encode(source, as: .f16)
        let values = try FloatValues(encoded: TensorBytes(copying: bytes), dtype: .f16, count: source.count)
        let s = try TensorStatistics.compute(values, dtype: .f16, histogramBins: 5)
        #expect(s.positiveInfinityCount == 1 && s.zeroCount == 1 && s.subnormalCount == 2)
        #expect(s.min == -1.25 && s.max == 65504)
        #expect(isClose(s.mean, 8188.168747037649))
        #expect(isClose(s.std, 21663.347970658822))
        #expect(isClose(s.l2Norm, 65504.00004444381))
        #expect(isClose(s.kurtosis, 3.142857125925673))
        #expect(isClose(s.p1, -1.1625000208616256, relative: 1e-12))
        #expect(isClose(s.p50, 0.04998829960823059, relative: 1e-12))
        #expect(isClose(s.p99, 60918.85999999998, relative: 1e-12))
        #expect(s.histogram?.counts == [7, 0, 0, 0, 1])
    }

    @Test("bf16 input through FloatCodec (rounded to nearest even like numpy's emulation)")
    func bfloat16() throws {
        let source: [Float] = [3.14159265, -2.71828, 1e-39, 0, 1e30, -7.5, 0.333333]
        let bytes = encode(source, as: .bf16)
        let values = try FloatValues(encoded: TensorBytes(copying: bytes), dtype: .bf16, count: source.count)
        let s = try TensorStatistics.compute(values, dtype: .bf16)
        #expect(s.zeroCount == 1 && s.subnormalCount == 1)
        #expect(s.min == -7.5 && s.max == 1.0002555517425873e+30)
        #expect(isClose(s.mean, 1.4289365024894104e+29))
        #expect(isClose(s.std, 3.50016530593628e+29))
        #expect(isClose(s.kurtosis, 2.166666666666666))
        #expect(isClose(s.p1, -7.213125, relative: 1e-12))
        #expect(isClose(s.p50, 1.0101904577379033e-39, relative: 1e-12))
        #expect(isClose(s.p99, 9.402402186380316e+29, relative: 1e-12))
    }

    @Test("Chunks processed in parallel give the same result as one chunk")
    func chunkingIsInvisible() throws {
        let values = offsetMillion()
        let whole = try TensorStatistics.compute(values)
        // 3M elements span three default chunks; statistics of a repeated array equal the original's.
        let tripled = try TensorStatistics.compute(values + values + values)
        #expect(isClose(tripled.mean, whole.mean!, relative: 1e-12))
        #expect(isClose(tripled.std, whole.std!, relative: 1e-9))
        #expect(isClose(tripled.kurtosis, whole.kurtosis!, relative: 1e-9))
        #expect(tripled.p50 == whole.p50 && tripled.beyond3Sigma == 3 * whole.beyond3Sigma)
    }

    private func encode(_ values: [Float], as dtype: DType) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: dtype.byteCount(elementCount: values.count)!)
        values.withUnsafeBufferPointer { src in
            bytes.withUnsafeMutableBytes { FloatCodec.encode(src, as: dtype, into: $0) }
        }
        return bytes
    }
}
