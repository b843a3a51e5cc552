#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import QPKCore

/// Writes a sharded safetensors checkpoint in the Hugging Face layout: a directory with
/// `model-00001-of-0000N.safetensors` … and `model.safetensors.index.json`
/// (`{"metadata":{"total_size":N},"weight_map":{...}}`, `total_size` being the sum of the tensors'
/// byte sizes).
///
/// Tensors are assigned to shards greedily in the announced order: a shard is closed when the next
/// tensor would push its data past `maxShardSize`, and a tensor larger than `maxShardSize` gets a
/// shard of its own.
///
/// The folder may exist and hold other files (a model folder with `config.json` and a tokenizer):
/// the writer touches only the files it writes, the shards and the index. Everything is written
/// into a hidden temporary folder first (``TemporaryFiles``: removed on SIGINT/SIGTERM, cleared
/// by the next run after a kill), so a failed or abandoned writer changes nothing: a new folder is
/// renamed into place by ``finish()``; into an existing one the finished shards, then the index,
/// are renamed. Without `overwrite`,
/// an existing shard or index of the same name is an error; with it, they are replaced, and the
/// shards of an earlier qpk run (`model-NNNNN-of-NNNNN.safetensors`) that the old index lists and
/// the new one does not are deleted. Nothing else in the folder is ever deleted.
public final class ShardedSafetensorsWriter: CheckpointWriter {
    /// The output directory.
    public let url: URL
    /// The shard file names, in order.
    public let shardFileNames: [String]
    /// The tensors of each shard, in the announced order.
    public let shardContents: [[TensorInfo]]
    /// The name of the index file written into the directory.
    public static let indexFileName = "model.safetensors.index.json"

    private let overwrite: Bool
    private var writers: [SafetensorsWriter]
    private let shardOfTensor: [String: Int]
    private let totalSize: Int
    private var finished = false
    /// Where the shards and the index are written: a hidden temporary folder (``TemporaryFiles``),
    /// beside `url` when `url` is new (renamed to `url` by ``finish()``), inside `url` when it
    /// exists (its files are renamed into `url` by ``finish()``, the index last). Removed on failure.
    private var temporaryFolder: URL?
    private let folder: URL
    /// Whether `url` existed: the files are moved into it rather than the folder renamed.
    private let intoExistingFolder: Bool
    /// Shards of an earlier qpk run listed by the old index and not rewritten now.
    private let staleShards: [String]
    private let lock = NSLock()

    /// Starts writing the checkpoint folder `url`.
    /// - Parameters:
    ///   - url: the folder to write into (created if missing; its parent must exist).
    ///   - tensors: every tensor, in the order used to fill the shards.
    ///   - metadata: the `__metadata__` written into every shard (Hugging Face writes `{"format": "pt"}`).
    ///   - maxShardSize: the most tensor bytes one shard may hold (unless one tensor alone is larger).
    ///   - overwrite: replace shards and an index of the same names (`--force`).
    /// - Throws: ``FileAccessError/alreadyExists(_:)`` when a shard or the index exists and
    ///   `overwrite` is false, ``FileAccessError/cannotWrite(_:_:)`` when `url` is a file or its
    ///   parent is missing, ``SafetensorsWriterError`` for a non-positive size, duplicate names or
    ///   bad shapes.
    public init(url: URL, tensors: [TensorInfo], metadata: [String: String], maxShardSize: Int, overwrite: Bool) throws {
        self.url = url
        self.overwrite = overwrite
        guard maxShardSize > 0 else { throw SafetensorsWriterError.invalidShardSize(path: url.path, size: maxShardSize) }

        var names = Set<String>()
        var shards: [[TensorInfo]] = [[]]
        var currentSize = 0
        var total = 0
        for tensor in tensors {
            guard names.insert(tensor.name).inserted else {
                throw SafetensorsWriterError.duplicateTensor(path: url.path, tensor: tensor.name)
            }
            guard let size = SafetensorsLayout.byteCount(of: tensor) else {
                throw SafetensorsWriterError.invalidShape(path: url.path, tensor: tensor.name)
            }
            let (sum, overflow) = total.addingReportingOverflow(size)
            guard !overflow else { throw SafetensorsWriterError.invalidShape(path: url.path, tensor: tensor.name) }
            total = sum
            if !shards[shards.count - 1].isEmpty, size > maxShardSize - currentSize {
                shards.append([])
                currentSize = 0
            }
            shards[shards.count - 1].append(tensor)
            currentSize += size
        }
        totalSize = total
        shardContents = shards
        let count = shards.count
        let fileNames = (1...count).map { "model-\(Self.fiveDigits($0))-of-\(Self.fiveDigits(count)).safetensors" }
        shardFileNames = fileNames
        var shardOfTensor: [String: Int] = [:]
        for (i, shard) in shards.enumerated() {
            for tensor in shard { shardOfTensor[tensor.name] = i }
        }
        self.shardOfTensor = shardOfTensor

        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        if manager.fileExists(atPath: url.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw FileAccessError.cannotWrite(url.path, "it is a file, not a folder; shards are written into a folder")
            }
            for name in fileNames + [Self.indexFileName] {
                let path = url.appendingPathComponent(name).path
                if manager.fileExists(atPath: path), !overwrite { throw FileAccessError.alreadyExists(path) }
            }
            staleShards = overwrite ? Self.shardsListed(byIndexIn: url).filter { !fileNames.contains($0) } : []
            TemporaryFiles.clearStale(in: url)
            let temporary = TemporaryFiles.temporaryURL(for: url.appendingPathComponent(url.lastPathComponent))
            guard mkdir(temporary.path, 0o755) == 0 else {
                throw FileAccessError.cannotWrite(url.path, String(cString: strerror(errno)))
            }
            TemporaryFiles.register(temporary)
            temporaryFolder = temporary
            intoExistingFolder = true
        } else {
            let parent = url.deletingLastPathComponent()
            guard manager.fileExists(atPath: parent.path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw FileAccessError.cannotWrite(url.path, "the folder \(parent.path) does not exist; create it first")
            }
            TemporaryFiles.clearStale(in: parent)
            let temporary = TemporaryFiles.temporaryURL(for: url)
            guard mkdir(temporary.path, 0o755) == 0 else {
                throw FileAccessError.cannotWrite(url.path, String(cString: strerror(errno)))
            }
            TemporaryFiles.register(temporary)
            temporaryFolder = temporary
            staleShards = []
            intoExistingFolder = false
        }
        folder = temporaryFolder ?? url
        writers = []
        do {
            for (i, shard) in shards.enumerated() {
                writers.append(try SafetensorsWriter(
                    url: folder.appendingPathComponent(fileNames[i]), tensors: shard, metadata: metadata, overwrite: false))
            }
        } catch {
            writers = []
            removeTemporaryFolder()
            if let error = error as? SafetensorsWriterError { throw error.reported(at: url.path) }
            throw error
        }
    }

    /// The shard files of an earlier qpk run that the folder's index lists: names of the form
    /// `model-NNNNN-of-NNNNN.safetensors` only (never a file qpk would not have written).
    static func shardsListed(byIndexIn folder: URL) -> [String] {
        let index = folder.appendingPathComponent(indexFileName)
        guard let file = try? MappedFile(url: index),
              case let .object(members)? = try? StrictJSONParser.parse(Array(file.bytes)),
              case let .object(entries)? = members.first(where: { $0.key == "weight_map" })?.value
        else { return [] }
        var names = Set<String>()
        for entry in entries {
            if case let .string(shard) = entry.value, isQPKShardName(shard) { names.insert(shard) }
        }
        return names.sorted()
    }

    /// Whether `name` is `model-NNNNN-of-NNNNN.safetensors` (five or more digits each).
    static func isQPKShardName(_ name: String) -> Bool {
        guard name.hasPrefix("model-"), name.hasSuffix(".safetensors") else { return false }
        let middle = name.dropFirst("model-".count).dropLast(".safetensors".count)
        let parts = middle.components(separatedBy: "-of-")
        return parts.count == 2 && parts.allSatisfy { $0.count >= 5 && $0.allSatisfy { ("0"..."9").contains($0) } }
    }

    private func removeTemporaryFolder() {
        guard let temporaryFolder else { return }
        try? FileManager.default.removeItem(at: temporaryFolder)
        TemporaryFiles.unregister(temporaryFolder)
        self.temporaryFolder = nil
    }

    private static func fiveDigits(_ n: Int) -> String {
        let text = String(n)
        return text.count >= 5 ? text : String(repeating: "0", count: 5 - text.count) + text
    }

    /// Writes one tensor into its shard (any order, as with ``SafetensorsWriter``).
    public func write(_ info: TensorInfo, storage: TensorStorage) throws {
        guard let shard = shardOfTensor[info.name] else {
            throw SafetensorsWriterError.unannouncedTensor(path: url.path, tensor: info.name)
        }
        do {
            try writers[shard].write(info, storage: storage)
        } catch let error as SafetensorsWriterError {
            throw error.reported(at: url.path)
        }
    }

    /// Completes every shard, then writes the index, then deletes the stale shards of an earlier run.
    /// - Throws: ``SafetensorsWriterError/missingTensors(path:tensors:)`` when a tensor was never
    ///   written (nothing is left behind), or a ``FileAccessError``.
    public func finish() throws {
        lock.lock()
        defer { lock.unlock() }
        guard !finished else { throw SafetensorsWriterError.alreadyFinished(path: url.path) }
        finished = true
        var succeeded = false
        defer { if !succeeded { writers = []; removeTemporaryFolder() } }
        let missing = writers.flatMap(\.unwrittenTensors)
        guard missing.isEmpty else { throw SafetensorsWriterError.missingTensors(path: url.path, tensors: missing) }
        for writer in writers { try writer.finish() }
        let index = try AtomicOutput(destination: folder.appendingPathComponent(Self.indexFileName), overwrite: false)
        try index.append(Array(indexJSON().utf8))
        try index.commit()
        guard let temporaryFolder else { throw SafetensorsWriterError.alreadyFinished(path: url.path) }
        if intoExistingFolder {
            try moveFiles(from: temporaryFolder)
        } else {
            // A folder that appeared meanwhile is never replaced (rename over a non-empty folder fails).
            guard rename(temporaryFolder.path, url.path) == 0 else {
                let reason = errno == EEXIST || errno == ENOTEMPTY ? "it appeared while writing; nothing was changed" : String(cString: strerror(errno))
                throw FileAccessError.cannotWrite(url.path, reason)
            }
            TemporaryFiles.unregister(temporaryFolder)
            self.temporaryFolder = nil
        }
        succeeded = true
        for name in staleShards { unlink(url.appendingPathComponent(name).path) }
    }

    /// Moves the finished shards, then the index, from `temporary` into the existing `url`: only
    /// renames, so the window in which the folder mixes old and new files is a few system calls
    /// (every byte was written and synced before).
    private func moveFiles(from temporary: URL) throws {
        let names = shardFileNames + [Self.indexFileName]
        if !overwrite, let clash = names.first(where: { FileManager.default.fileExists(atPath: url.appendingPathComponent($0).path) }) {
            throw FileAccessError.alreadyExists(url.appendingPathComponent(clash).path)
        }
        for name in names {
            guard rename(temporary.appendingPathComponent(name).path, url.appendingPathComponent(name).path) == 0 else {
                throw FileAccessError.cannotWrite(url.appendingPathComponent(name).path, String(cString: strerror(errno)))
            }
        }
        removeTemporaryFolder()
    }

    /// The index JSON, formatted as transformers writes it (`indent=2`, keys sorted).
    private func indexJSON() -> String {
        var lines = ["{", "  \"metadata\": {", "    \"total_size\": \(totalSize)", "  },", "  \"weight_map\": {"]
        let entries = shardOfTensor.keys.sorted(by: JSONText.utf8Less).map {
            "    \(JSONText.quoted($0)): \(JSONText.quoted(shardFileNames[shardOfTensor[$0]!]))"
        }
        lines.append(entries.joined(separator: ",\n"))
        if entries.isEmpty { lines.removeLast() }
        lines += ["  }", "}"]
        return lines.joined(separator: "\n") + "\n"
    }

    deinit {
        if !finished {
            writers = []
            removeTemporaryFolder()
        }
    }
}
