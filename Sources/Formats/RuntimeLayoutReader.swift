import Foundation
import QPKCore

/// Reads a safetensors checkpoint stored in a runtime's quantized layout (MLX affine or GPTQ,
/// spec/runtime-layouts.md) as the float weights it stands for: each packed weight appears once,
/// as `base.weight` `[out, in]`, dequantized exactly as the runtime does
/// (``RuntimeLayoutDequantization``); every other tensor passes through.
///
/// So `qpk inspect`, `qpk diff model/ model-mlx/` and `qpk convert model-gptq/ restored.safetensors`
/// work on what MLX and GPTQ tools write, and on what `qpk convert --layout` writes.
public final class RuntimeLayoutReader: CheckpointReader, @unchecked Sendable {
    /// One packed weight and how to read it.
    struct PackedWeight {
        var info: TensorInfo
        var parts: [TensorInfo]
        var bits: Int
        var groupSize: Int
        /// GPTQ only: v1 stores `zero − 1`.
        var zerosStoredMinusOne: Bool
    }

    public let layout: RuntimeLayout
    public let tensors: [TensorInfo]
    public let metadata: [String: String]
    public var url: URL { inner.url }
    public var format: CheckpointFormat { inner.format }
    private let inner: any CheckpointReader
    private let packed: [String: PackedWeight]
    private let index: [String: TensorInfo]

    /// Wraps `inner` when its tensors follow a runtime layout that `config` (the model folder's
    /// `config.json`, and GPTQ's `quantize_config.json`) describes; `nil` otherwise.
    public static func wrapping(_ inner: any CheckpointReader) throws -> RuntimeLayoutReader? {
        let byName = Dictionary(inner.tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        // The folder's config is read only once a packed weight is found: plain checkpoints
        // (the common case) cost no extra I/O.
        lazy var config = Self.configuration(near: inner.url)
        var packed: [String: PackedWeight] = [:]
        var layout: RuntimeLayout?
        for info in inner.tensors where info.name.hasSuffix(".scales") {
            let base = String(info.name.dropLast(".scales".count))
            if let weight = byName[base + ".weight"], weight.dtype == .u32, let biases = byName[base + ".biases"] {
                guard let (bits, group) = mlxParameters(for: base, config: config) else {
                    throw RuntimeLayoutError.missingConfiguration(inner.url.path, tensor: base + ".weight")
                }
                let out = weight.shape.first ?? 0
                let columns = (weight.shape.last ?? 0) * 32 / bits
                try checkShapes(base, [weight.shape == [out, columns * bits / 32], info.shape == [out, columns / max(group, 1)],
                                       biases.shape == info.shape, columns % max(group, 1) == 0], path: inner.url.path)
                packed[base + ".weight"] = PackedWeight(
                    info: TensorInfo(name: base + ".weight", dtype: info.dtype, shape: [out, columns]),
                    parts: [weight, info, biases], bits: bits, groupSize: group, zerosStoredMinusOne: false)
                layout = .mlx
            } else if let qweight = byName[base + ".qweight"], let qzeros = byName[base + ".qzeros"] {
                let groups = info.shape.first ?? 0, out = info.shape.last ?? 0
                let gIndex = byName[base + ".g_idx"]
                let description = config["quantization_config"] as? [String: Any] ?? config["quantize_config"] as? [String: Any]
                let columns = gIndex?.shape.first ?? ((description?["group_size"] as? Int).map { $0 * groups } ?? 0)
                guard columns > 0, let rows = qweight.shape.first, rows * 32 % columns == 0 else {
                    throw RuntimeLayoutError.missingConfiguration(inner.url.path, tensor: base + ".qweight")
                }
                let bits = rows * 32 / columns
                let format = description?["checkpoint_format"] as? String ?? "gptq"
                try checkShapes(base, [qweight.shape == [rows, out], qzeros.shape == [groups, out * bits / 32],
                                       groups > 0, columns % groups == 0, [2, 3, 4, 8].contains(bits)], path: inner.url.path)
                packed[base + ".weight"] = PackedWeight(
                    info: TensorInfo(name: base + ".weight", dtype: .f16, shape: [out, columns]),
                    parts: [qweight, qzeros, info] + (gIndex.map { [$0] } ?? []), bits: bits,
                    groupSize: columns / groups, zerosStoredMinusOne: format != "gptq_v2")
                layout = .gptq
            }
        }
        guard let layout, !packed.isEmpty else { return nil }
        return RuntimeLayoutReader(inner: inner, layout: layout, packed: packed)
    }

    private init(inner: any CheckpointReader, layout: RuntimeLayout, packed: [String: PackedWeight]) {
        self.inner = inner
        self.layout = layout
        self.packed = packed
        var weightOfPart: [String: TensorInfo] = [:]
        for weight in packed.values {
            for part in weight.parts { weightOfPart[part.name] = weight.info }
        }
        var tensors: [TensorInfo] = []
        var emitted = Set<String>()
        for info in inner.tensors {
            guard let weight = weightOfPart[info.name] else {
                tensors.append(info)
                continue
            }
            // A packed weight takes the place of its first part.
            if emitted.insert(weight.name).inserted { tensors.append(weight) }
        }
        self.tensors = tensors
        index = Dictionary(tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var metadata = inner.metadata
        metadata["qpk.runtime_layout"] = layout.rawValue
        self.metadata = metadata
    }

    /// The safetensors reader underneath, which sees the packed tensors as stored.
    public var underlying: any CheckpointReader { inner }

    public func tensor(named name: String) -> TensorInfo? { index[name] }

    public func quantizedByteCount(of tensor: TensorInfo) -> Int? {
        packed[tensor.name].map { $0.parts.reduce(0) { $0 + $1.byteCount } }
    }

    public func storage(of tensor: TensorInfo) throws -> TensorStorage {
        guard let weight = packed[tensor.name] else { return try inner.storage(of: tensor) }
        let bytes = try weight.parts.map { try inner.denseBytes(of: $0) }
        let (out, columns) = (weight.info.shape[0], weight.info.shape[1])
        let values: [Float]
        switch layout {
        case .mlx:
            let scaleDType = weight.parts[1].dtype
            values = words(bytes[0]).withUnsafeBufferPointer {
                RuntimeLayoutDequantization.dequantizeMLX(
                    weight: $0, scales: floats(bytes[1], scaleDType), biases: floats(bytes[2], scaleDType),
                    scaleDType: scaleDType, out: out, columns: columns, bits: weight.bits, groupSize: weight.groupSize)
            }
        case .gptq:
            let gIndex = bytes.count > 3 ? words(bytes[3]).map { Int(Int32(bitPattern: $0)) }
                : (0..<columns).map { $0 / weight.groupSize }
            let groups = weight.parts[2].shape[0]
            guard gIndex.count == columns, gIndex.allSatisfy({ (0..<groups).contains($0) }) else {
                throw RuntimeLayoutError.inconsistent(url.path, tensor: tensor.name, "g_idx names a group outside 0..<\(groups)")
            }
            let qweight = words(bytes[0]), qzeros = words(bytes[1])
            values = qweight.withUnsafeBufferPointer { qw in
                qzeros.withUnsafeBufferPointer { qz in
                    RuntimeLayoutDequantization.dequantizeGPTQ(
                        qweight: qw, qzeros: qz, scales: floats(bytes[2], .f16), gIndex: gIndex, out: out,
                        columns: columns, bits: weight.bits, zerosStoredMinusOne: weight.zerosStoredMinusOne)
                }
            }
        }
        let buffer = ByteBuffer(count: weight.info.byteCount)
        values.withUnsafeBufferPointer { FloatCodec.encode($0, as: weight.info.dtype, into: buffer.mutableBytes) }
        return .dense(TensorBytes(buffer))
    }

    private func words(_ bytes: TensorBytes) -> [UInt32] {
        bytes.withUnsafeBytes { raw in (0..<(raw.count / 4)).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self).littleEndian } }
    }

    private func floats(_ bytes: TensorBytes, _ dtype: DType) -> [Float] {
        let count = bytes.count / max(1, (dtype.byteCount(elementCount: 1) ?? 1))
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            bytes.withUnsafeBytes { FloatCodec.decode($0, dtype: dtype, count: count, into: buffer) }
            initialized = count
        }
    }

    /// The bits and group size of MLX module `base`: its per-module override, else the file's.
    static func mlxParameters(for base: String, config: [String: Any]) -> (Int, Int)? {
        guard let description = config["quantization"] as? [String: Any] ?? config["quantization_config"] as? [String: Any]
        else { return nil }
        let specific = description[base] as? [String: Any]
        guard let bits = specific?["bits"] as? Int ?? description["bits"] as? Int,
              let group = specific?["group_size"] as? Int ?? description["group_size"] as? Int else { return nil }
        return (bits, group)
    }

    /// `config.json` merged with GPTQ's `quantize_config.json` (under `quantize_config`), from the
    /// folder `url` names or the folder of the file it names; empty when there is none.
    static func configuration(near url: URL) -> [String: Any] {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory)
        let folder = exists && isDirectory.boolValue ? url : url.deletingLastPathComponent()
        func object(_ name: String) -> [String: Any]? {
            guard let data = FileManager.default.contents(atPath: folder.appendingPathComponent(name).path) else { return nil }
            return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        }
        var config = object("config.json") ?? [:]
        if let gptq = object("quantize_config.json") { config["quantize_config"] = gptq }
        return config
    }

    static func checkShapes(_ base: String, _ conditions: [Bool], path: String) throws {
        guard conditions.allSatisfy({ $0 }) else {
            throw RuntimeLayoutError.inconsistent(path, tensor: base, "the packed tensors' shapes do not agree with each other and the configuration")
        }
    }
}

/// A runtime-layout checkpoint that cannot be read as float weights.
public enum RuntimeLayoutError: CheckpointDiagnosable, Sendable, Equatable {
    case missingConfiguration(String, tensor: String)
    case inconsistent(String, tensor: String, String)

    public var diagnostic: CheckpointDiagnostic {
        switch self {
        case let .missingConfiguration(path, tensor):
            CheckpointDiagnostic(
                file: path, tensor: tensor, rule: "missing_layout_config",
                detail: "a packed weight whose bits and group size no config.json beside it gives",
                hint: "keep the model folder's config.json with its weights")
        case let .inconsistent(path, tensor, detail):
            CheckpointDiagnostic(file: path, tensor: tensor, rule: "inconsistent_layout", detail: detail)
        }
    }
}
