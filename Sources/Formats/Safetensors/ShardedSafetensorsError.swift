import QPKCore

/// Why a directory or index file is not a valid sharded safetensors checkpoint. Problems inside a
/// shard are reported as that shard's ``SafetensorsError``.
public enum ShardedSafetensorsError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The directory has no `*.safetensors.index.json` and no `*.safetensors` file.
    case noShards(path: String)
    /// The directory has more than one `*.safetensors.index.json`.
    case ambiguousIndex(path: String, candidates: [String])
    /// The index file is not `{"metadata": {...}, "weight_map": {"tensor": "shard file"}}`.
    case invalidIndex(path: String, detail: String)
    /// The index's `weight_map` is `{}`: it lists no tensor, so it describes no checkpoint (a
    /// truncated or hand-edited index; transformers never writes one).
    case emptyWeightMap(path: String)
    /// A `weight_map` entry names a shard outside the index's directory (absolute or `..`).
    case unsafeShardPath(path: String, tensor: String, shard: String)
    /// A shard file named by the index does not exist.
    case missingShard(path: String, shard: String)
    /// The index maps a tensor to a shard that does not contain it.
    case tensorNotInShard(path: String, tensor: String, shard: String)
    /// A shard holds a tensor the index does not list.
    case unlistedTensor(path: String, tensor: String, shard: String)
    /// Two shards hold a tensor of the same name.
    case duplicateTensor(path: String, tensor: String, firstShard: String, secondShard: String)

    public var description: String {
        switch self {
        case let .noShards(path):
            "\(path): no *.safetensors.index.json and no *.safetensors files; point at a checkpoint directory or index file"
        case let .ambiguousIndex(path, candidates):
            "\(path): several index files (\(candidates.joined(separator: ", "))); pass the index file to use"
        case let .invalidIndex(path, detail):
            "\(path): invalid shard index: \(detail); expected {\"metadata\": {...}, \"weight_map\": {\"tensor\": \"shard.safetensors\"}}"
        case let .emptyWeightMap(path):
            "\(path): the index's weight_map is empty, so it names no tensor and no shard; the index is truncated or was written by mistake: re-create or re-download it"
        case let .unsafeShardPath(path, name, shard):
            "\(path): tensor '\(name)': shard path '\(shard)' leaves the checkpoint directory; shard names must be relative file names"
        case let .missingShard(path, shard):
            "\(path): shard '\(shard)' named by the index does not exist; the download is incomplete"
        case let .tensorNotInShard(path, name, shard):
            "\(path): tensor '\(name)': the index maps it to '\(shard)' which does not contain it; the index and shards disagree"
        case let .unlistedTensor(path, name, shard):
            "\(path): tensor '\(name)': present in shard '\(shard)' but missing from the index's weight_map; the index is stale"
        case let .duplicateTensor(path, name, first, second):
            "\(path): tensor '\(name)': stored in both '\(first)' and '\(second)'; tensor names must be unique across shards"
        }
    }

    /// The rule's name, as `qpk validate` reports it.
    public var ruleName: String {
        switch self {
        case .noShards: "NoShards"
        case .ambiguousIndex: "AmbiguousIndex"
        case .invalidIndex: "InvalidIndex"
        case .emptyWeightMap: "EmptyWeightMap"
        case .unsafeShardPath: "UnsafeShardPath"
        case .missingShard: "MissingShard"
        case .tensorNotInShard: "TensorNotInShard"
        case .unlistedTensor: "UnlistedTensor"
        case .duplicateTensor: "DuplicateTensor"
        }
    }

    /// The tensor the problem is about, if any.
    public var tensor: String? {
        switch self {
        case let .unsafeShardPath(_, tensor, _), let .tensorNotInShard(_, tensor, _),
             let .unlistedTensor(_, tensor, _), let .duplicateTensor(_, tensor, _, _):
            tensor
        default: nil
        }
    }
}
