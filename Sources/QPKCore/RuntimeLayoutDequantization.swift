import QPKCore

/// The exact dequantization of the runtime layouts (spec/runtime-layouts.md), as the runtimes
/// compute it, so that `qpk` reads an MLX or GPTQ folder bit for bit as `mlx` and AutoGPTQ do.
public enum RuntimeLayoutDequantization {
    /// MLX's dequantization `w = scale·q + bias`, computed as MLX computes it: in the scales'
    /// dtype, each product and sum rounded to it (exact f32 arithmetic for F32).
    /// - Parameters:
    ///   - weight: `out × (in·bits/32)` words; `scales`, `biases`: `out × in/group` values
    ///     already widened to Float; `scaleDType`: their stored dtype.
    /// - Returns: the `out × in` weights, row-major.
    public static func dequantizeMLX(
        weight: UnsafeBufferPointer<UInt32>, scales: [Float], biases: [Float], scaleDType: DType,
        out: Int, columns: Int, bits: Int, groupSize: Int
    ) -> [Float] {
        let groups = columns / groupSize
        var result = [Float](repeating: 0, count: out * columns)
        for r in 0..<out {
            let codes = WordPacking.unpack(weight, bits: bits, first: r * columns, count: columns)
            for c in 0..<columns {
                let s = scales[r * groups + c / groupSize], b = biases[r * groups + c / groupSize]
                let product = round(s * Float(codes[c]), to: scaleDType)
                result[r * columns + c] = round(product + b, to: scaleDType)
            }
        }
        return result
    }

    /// GPTQ's dequantization `w = scale·(q − zero)` in fp16, with v1's stored `zero − 1`
    /// (`zerosStoredMinusOne`) or v2's stored `zero`.
    /// - Returns: the `out × in` weights, row-major (the `[out, in]` `weight` of the layer).
    public static func dequantizeGPTQ(
        qweight: UnsafeBufferPointer<UInt32>, qzeros: UnsafeBufferPointer<UInt32>, scales: [Float],
        gIndex: [Int], out: Int, columns: Int, bits: Int, zerosStoredMinusOne: Bool
    ) -> [Float] {
        let groups = scales.count / max(out, 1)
        let wordsPerColumn = columns * bits / 32
        var zeros = [Float](repeating: 0, count: groups * out)
        for g in 0..<groups {
            let stored = WordPacking.unpack(qzeros, bits: bits, first: g * out, count: out)
            for j in 0..<out {
                zeros[g * out + j] = Float(zerosStoredMinusOne ? stored[j] + 1 : stored[j])
            }
        }
        var result = [Float](repeating: 0, count: out * columns)
        var column = [UInt32](repeating: 0, count: wordsPerColumn)
        for j in 0..<out {
            for w in 0..<wordsPerColumn { column[w] = qweight[w * out + j] }
            let codes = column.withUnsafeBufferPointer { WordPacking.unpack($0, bits: bits, first: 0, count: columns) }
            for i in 0..<columns {
                let g = gIndex[i]
                let difference = Float(codes[i]) - zeros[g * out + j]
                result[j * columns + i] = round(scales[g * out + j] * difference, to: .f16)
            }
        }
        return result
    }

    /// `value` rounded to `dtype` (to nearest, ties to even) and widened back.
    public static func round(_ value: Float, to dtype: DType) -> Float {
        switch dtype {
        case .f16: Float(Float16(value))
        case .bf16: FloatCodec.float(fromBFloat16: FloatCodec.bfloat16Bits(from: value))
        default: value
        }
    }

}
