import QPKCore

/// The tensors a runtime layout stores for one quantized weight, and their exact dequantization
/// (spec/runtime-layouts.md).
///
/// The encoding starts from a ``QuantizedTensor`` of the `[out, in]` weight with groups along
/// `in` (``QuantizationAxis/last``), no outliers, and — for GPTQ — integer zero-points
/// (``ZeroPointDomain/gptqInteger``), as ``TensorQuantizer`` makes it for the layout's decision.
public enum RuntimeLayoutEncoding {
    /// A named tensor of a layout, with its little-endian bytes.
    public struct Part: Sendable {
        public var info: TensorInfo
        public var bytes: [UInt8]
    }

    /// Why a weight cannot be stored in a layout.
    public enum Unsupported: Error, Sendable, Equatable, CustomStringConvertible {
        case notAMatrixWeight(String)
        case groupDoesNotDivide(String, columns: Int, groupSize: Int)
        case bits(String, Int, RuntimeLayout)

        public var description: String {
            switch self {
            case let .notAMatrixWeight(name):
                "tensor '\(name)': a runtime layout stores 2-D `*.weight` matrices only"
            case let .groupDoesNotDivide(name, columns, group):
                "tensor '\(name)': its \(columns) input columns are not a multiple of the group size \(group)"
            case let .bits(name, bits, layout):
                "tensor '\(name)': \(bits)-bit codes cannot be stored in the \(layout.rawValue) layout"
            }
        }
    }

    /// The float dtype MLX keeps a weight's scales and biases in: the weight's own when it is
    /// F32, F16 or BF16, F32 otherwise.
    public static func mlxScaleDType(for dtype: DType) -> DType {
        [.f32, .f16, .bf16].contains(dtype) ? dtype : .f32
    }

    /// Whether `info` can be stored in `layout` with `bits` and `groupSize` (nil) or why not.
    public static func check(
        _ info: TensorInfo, layout: RuntimeLayout, bits: Int, groupSize: Int
    ) -> Unsupported? {
        guard info.shape.count == 2, RuntimeLayout.modulePath(of: info.name) != nil else {
            return .notAMatrixWeight(info.name)
        }
        guard layout.supportedBits.contains(bits) else { return .bits(info.name, bits, layout) }
        let (out, columns) = (info.shape[0], info.shape[1])
        guard columns % groupSize == 0, columns * bits % 32 == 0 else {
            return .groupDoesNotDivide(info.name, columns: columns, groupSize: groupSize)
        }
        if layout == .gptq, out * bits % 32 != 0 { return .groupDoesNotDivide(info.name, columns: out, groupSize: 32) }
        return nil
    }

    /// The tensors `info` becomes in `layout` (names, dtypes, shapes), in file order.
    public static func parts(
        of info: TensorInfo, layout: RuntimeLayout, bits: Int, groupSize: Int
    ) -> [TensorInfo] {
        let base = RuntimeLayout.modulePath(of: info.name) ?? info.name
        let (out, columns) = (info.shape[0], info.shape[1])
        let groups = columns / groupSize
        switch layout {
        case .mlx:
            let dtype = mlxScaleDType(for: info.dtype)
            return [
                TensorInfo(name: base + ".weight", dtype: .u32, shape: [out, columns * bits / 32]),
                TensorInfo(name: base + ".scales", dtype: dtype, shape: [out, groups]),
                TensorInfo(name: base + ".biases", dtype: dtype, shape: [out, groups]),
            ]
        case .gptq:
            return [
                TensorInfo(name: base + ".qweight", dtype: .i32, shape: [columns * bits / 32, out]),
                TensorInfo(name: base + ".qzeros", dtype: .i32, shape: [groups, out * bits / 32]),
                TensorInfo(name: base + ".scales", dtype: .f16, shape: [groups, out]),
                TensorInfo(name: base + ".g_idx", dtype: .i32, shape: [columns]),
            ]
        }
    }

    /// The layout's tensors for `tensor`, in the order of ``parts(of:layout:bits:groupSize:)``.
    public static func encode(_ tensor: QuantizedTensor, layout: RuntimeLayout) -> [Part] {
        let info = tensor.info
        let bits = tensor.layout.bits, group = tensor.layout.groupSize
        let names = parts(of: info, layout: layout, bits: bits, groupSize: group)
        let (out, columns) = (info.shape[0], info.shape[1])
        let groups = columns / group
        switch layout {
        case .mlx:
            // Rows are whole words, so QPK's row-major LSB-first stream is MLX's uint32 array.
            let dtype = names[1].dtype
            var scales = [Float](repeating: 0, count: out * groups)
            var biases = [Float](repeating: 0, count: out * groups)
            for i in 0..<(out * groups) {
                let s = Float(tensor.scales[i])
                scales[i] = s
                biases[i] = -s * Float(tensor.zeros[i])
            }
            return [
                Part(info: names[0], bytes: tensor.codes),
                Part(info: names[1], bytes: encodeFloats(scales, as: dtype)),
                Part(info: names[2], bytes: encodeFloats(biases, as: dtype)),
            ]
        case .gptq:
            var codes = [UInt32](repeating: 0, count: out * columns)
            tensor.codes.withUnsafeBufferPointer { packed in
                var row = [UInt8](repeating: 0, count: columns)
                row.withUnsafeMutableBufferPointer { buffer in
                    for j in 0..<out {
                        BitPacking.unpack(packed, bits: bits, first: j * columns, count: columns, into: buffer)
                        for i in 0..<columns { codes[i * out + j] = UInt32(buffer[i]) }
                    }
                }
            }
            // qweight: each output column's codes along the input, one stream per column.
            let wordsPerColumn = columns * bits / 32
            var qweight = [UInt32](repeating: 0, count: wordsPerColumn * out)
            var column: [UInt32] = []
            var words: [UInt32] = []
            for j in 0..<out {
                column.removeAll(keepingCapacity: true)
                for i in 0..<columns { column.append(codes[i * out + j]) }
                words.removeAll(keepingCapacity: true)
                WordPacking.pack(column, bits: bits, into: &words)
                for w in 0..<wordsPerColumn { qweight[w * out + j] = words[w] }
            }
            // qzeros: each group's zero-points − 1 (v1) along the output, one stream per group.
            var qzeros: [UInt32] = []
            var scales = [Float](repeating: 0, count: groups * out)
            for g in 0..<groups {
                let stored = (0..<out).map { j in UInt32(Float(tensor.zeros[j * groups + g])) - 1 }
                WordPacking.pack(stored, bits: bits, into: &qzeros)
                for j in 0..<out { scales[g * out + j] = Float(tensor.scales[j * groups + g]) }
            }
            let gIndex = (0..<columns).map { UInt32($0 / group) }
            return [
                Part(info: names[0], bytes: littleEndian(qweight)),
                Part(info: names[1], bytes: littleEndian(qzeros)),
                Part(info: names[2], bytes: encodeFloats(scales, as: .f16)),
                Part(info: names[3], bytes: littleEndian(gIndex)),
            ]
        }
    }

    static func encodeFloats(_ values: [Float], as dtype: DType) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: dtype.byteCount(elementCount: values.count) ?? 0)
        values.withUnsafeBufferPointer { source in
            bytes.withUnsafeMutableBytes { FloatCodec.encode(source, as: dtype, into: $0) }
        }
        return bytes
    }

    static func littleEndian(_ words: [UInt32]) -> [UInt8] {
        words.map(\.littleEndian).withUnsafeBytes { [UInt8]($0) }
    }
}
