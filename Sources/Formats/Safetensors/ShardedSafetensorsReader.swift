import Foundation
import QPKCore

/// Reads a sharded safetensors checkpoint (the Hugging Face layout): a directory holding
/// `*.safetensors` shards and usually a `model.safetensors.index.json`, or that index file itself.
///
/// Every shard is mapped and validated like a single file, and the index is checked against the
/// shards: each `weight_map` entry must be in its shard, and no tensor may appear in two shards or
/// be missing from the index. Tensors are listed shard by shard (shards in name order), each shard
/// in its file order.
public final class ShardedSafetensorsReader: CheckpointReader {
    public let url: URL
    public var format: CheckpointFormat { .safetensors }
    public let tensors: [TensorInfo]
    /// The union of the shards' `__metadata__` (the first shard in name order wins a conflict).
    /// The index's own `metadata` (such as `total_size`) is not tensor metadata; see ``totalSize``.
    public let metadata: [String: String]
    /// The shard readers, in name order.
    public let shards: [SafetensorsReader]
    /// The index file, when there is one.
    public let indexURL: URL?
    /// The index's `metadata.total_size`, when present.
    public let totalSize: Int?
    private let shardOfTensor: [String: Int]

    /// Opens a checkpoint directory or a `*.safetensors.index.json` file.
    /// - Throws: ``ShardedSafetensorsError`` for a bad layout or index, a shard's
    ///   ``SafetensorsError``, or ``FileAccessError``.
    public init(url: URL) throws {
        self.url = url
        let path = url.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw FileAccessError.cannotOpen(path, "no such file or directory")
        }
        let directory: URL
        var shardNames: [String]
        var weightMap: [(tensor: String, shard: String)]?
        var totalSize: Int?
        if isDirectory.boolValue {
            directory = url
            let entries = try FileManager.default.contentsOfDirectory(atPath: path)
                .filter { !$0.hasPrefix(".") }
                .sorted(by: JSONText.utf8Less)
            let indexes = entries.filter { $0.hasSuffix(".safetensors.index.json") }
            if indexes.count > 1 { throw ShardedSafetensorsError.ambiguousIndex(path: path, candidates: indexes) }
            if let index = indexes.first {
                indexURL = url.appendingPathComponent(index)
            } else {
                indexURL = nil
            }
            shardNames = entries.filter { $0.hasSuffix(".safetensors") }
        } else {
            directory = url.deletingLastPathComponent()
            indexURL = url
            shardNames = []
        }
        if let indexURL {
            let parsed = try Self.readIndex(indexURL)
            weightMap = parsed.weightMap
            totalSize = parsed.totalSize
            var seen = Set<String>()
            shardNames = []
            for (tensor, shard) in parsed.weightMap {
                let components = shard.split(separator: "/", omittingEmptySubsequences: false)
                guard !shard.hasPrefix("/"), !components.contains(".."), !shard.isEmpty else {
                    throw ShardedSafetensorsError.unsafeShardPath(path: indexURL.path, tensor: tensor, shard: shard)
                }
                if seen.insert(shard).inserted { shardNames.append(shard) }
            }
            shardNames.sort(by: JSONText.utf8Less)
        }
        guard !shardNames.isEmpty || weightMap != nil else { throw ShardedSafetensorsError.noShards(path: path) }
        self.totalSize = totalSize

        var readers: [SafetensorsReader] = []
        var shardOfTensor: [String: Int] = [:]
        var tensors: [TensorInfo] = []
        var metadata: [String: String] = [:]
        let reportPath = indexURL?.path ?? path
        for (i, name) in shardNames.enumerated() {
            let shardURL = directory.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: shardURL.path) else {
                throw ShardedSafetensorsError.missingShard(path: reportPath, shard: name)
            }
            let reader = try SafetensorsReader(url: shardURL)
            for tensor in reader.tensors {
                if let previous = shardOfTensor[tensor.name] {
                    throw ShardedSafetensorsError.duplicateTensor(
                        path: reportPath, tensor: tensor.name, firstShard: shardNames[previous], secondShard: name)
                }
                shardOfTensor[tensor.name] = i
                tensors.append(tensor)
            }
            metadata.merge(reader.metadata) { first, _ in first }
            readers.append(reader)
        }
        if let weightMap {
            var listed = Set<String>()
            for (tensor, shard) in weightMap {
                listed.insert(tensor)
                guard let index = shardOfTensor[tensor], shardNames[index] == shard else {
                    throw ShardedSafetensorsError.tensorNotInShard(path: reportPath, tensor: tensor, shard: shard)
                }
            }
            if let unlisted = tensors.first(where: { !listed.contains($0.name) }) {
                throw ShardedSafetensorsError.unlistedTensor(
                    path: reportPath, tensor: unlisted.name, shard: shardNames[shardOfTensor[unlisted.name]!])
            }
        }
        shards = readers
        self.shardOfTensor = shardOfTensor
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The tensor called `name`, if any (O(1)).
    public func tensor(named name: String) -> TensorInfo? {
        shardOfTensor[name].flatMap { shards[$0].tensor(named: name) }
    }

    /// The shard that holds the tensor called `name`.
    public func shard(containing name: String) -> SafetensorsReader? {
        shardOfTensor[name].map { shards[$0] }
    }

    public func storage(of tensor: TensorInfo) throws -> TensorStorage {
        guard let index = shardOfTensor[tensor.name] else { throw CheckpointError.noSuchTensor(url.path, tensor.name) }
        return try shards[index].storage(of: tensor)
    }

    /// Whether `url` is a sharded checkpoint: a `*.safetensors.index.json` file, or a directory
    /// holding such an index or at least one `*.safetensors` file.
    public static func isShardedCheckpoint(_ url: URL) -> Bool {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else { return false }
        if !isDirectory.boolValue { return url.lastPathComponent.hasSuffix(".safetensors.index.json") }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        return entries.contains { !$0.hasPrefix(".") && ($0.hasSuffix(".safetensors") || $0.hasSuffix(".safetensors.index.json")) }
    }

    /// Parses an index file strictly (duplicate keys are errors).
    private static func readIndex(_ url: URL) throws -> (weightMap: [(tensor: String, shard: String)], totalSize: Int?) {
        // Mapped, not read with Data(contentsOf:): a FIFO or device is refused, never waited on.
        let file = try MappedFile(url: url)
        let json: JSONValue
        do {
            json = try StrictJSONParser.parse(Array(file.bytes))
        } catch {
            throw ShardedSafetensorsError.invalidIndex(path: url.path, detail: "invalid JSON: \(error.description)")
        }
        guard case let .object(members) = json else {
            throw ShardedSafetensorsError.invalidIndex(path: url.path, detail: "the index is \(json.kindName), not an object")
        }
        var weightMap: [(tensor: String, shard: String)]?
        var totalSize: Int?
        for (key, value) in members {
            switch key {
            case "weight_map":
                guard case let .object(entries) = value else {
                    throw ShardedSafetensorsError.invalidIndex(path: url.path, detail: "weight_map is \(value.kindName), not an object")
                }
                weightMap = try entries.map { entry in
                    guard case let .string(shard) = entry.value else {
                        throw ShardedSafetensorsError.invalidIndex(
                            path: url.path, detail: "weight_map entry '\(entry.key)' is \(entry.value.kindName), not a file name")
                    }
                    return (entry.key, shard)
                }
            case "metadata":
                guard case let .object(fields) = value else {
                    if value == .null { continue }
                    throw ShardedSafetensorsError.invalidIndex(path: url.path, detail: "metadata is \(value.kindName), not an object")
                }
                for (field, item) in fields where field == "total_size" {
                    switch item {
                    case let .number(_, unsigned?) where unsigned <= UInt64(Int.max): totalSize = Int(unsigned)
                    case let .string(text): totalSize = Int(text)
                    default:
                        throw ShardedSafetensorsError.invalidIndex(path: url.path, detail: "metadata.total_size is not a byte count")
                    }
                }
            default:
                continue
            }
        }
        guard let weightMap else {
            throw ShardedSafetensorsError.invalidIndex(path: url.path, detail: "missing weight_map")
        }
        guard !weightMap.isEmpty else { throw ShardedSafetensorsError.emptyWeightMap(path: url.path) }
        return (weightMap, totalSize)
    }
}
