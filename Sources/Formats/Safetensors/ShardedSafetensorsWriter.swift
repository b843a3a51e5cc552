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
/// shard of its own. The directory is built under a temporary name beside `url` and renamed into
/// place by ``finish()``, so a failed or abandoned writer leaves nothing at `url`.
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
    private let temporaryDirectory: URL
    private var writers: [SafetensorsWriter]
    private let shardOfTensor: [String: Int]
    private let totalSize: Int
    private var finished = false
    private let lock = NSLock()

    /// Starts writing the checkpoint directory `url`.
    /// - Parameters:
    ///   - url: the directory to create.
    ///   - tensors: every tensor, in the order used to fill the shards.
    ///   - metadata: the `__metadata__` written into every shard (Hugging Face writes `{"format": "pt"}`).
    ///   - maxShardSize: the most tensor bytes one shard may hold (unless one tensor alone is larger).
    ///   - overwrite: replace an existing `url` (`--force`).
    /// - Throws: ``FileAccessError/alreadyExists(_:)`` when `url` exists and `overwrite` is false,
    ///   ``SafetensorsWriterError`` for a non-positive size, duplicate names or bad shapes.
    public init(url: URL, tensors: [TensorInfo], metadata: [String: String], maxShardSize: Int, overwrite: Bool) throws {
        self.url = url
        self.overwrite = overwrite
        guard maxShardSize > 0 else { throw SafetensorsWriterError.invalidShardSize(path: url.path, size: maxShardSize) }
        if !overwrite, FileManager.default.fileExists(atPath: url.path) { throw FileAccessError.alreadyExists(url.path) }

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
        shardFileNames = (1...count).map { "model-\(Self.fiveDigits($0))-of-\(Self.fiveDigits(count)).safetensors" }
        var shardOfTensor: [String: Int] = [:]
        for (i, shard) in shards.enumerated() {
            for tensor in shard { shardOfTensor[tensor.name] = i }
        }
        self.shardOfTensor = shardOfTensor

        let parent = url.deletingLastPathComponent()
        temporaryDirectory = parent.appendingPathComponent(
            ".\(url.lastPathComponent).qpk-tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        do {
            try FileManager.default.createDirectory(at: temporaryDirectory, withIntermediateDirectories: false)
        } catch {
            throw FileAccessError.cannotWrite(url.path, error.localizedDescription)
        }
        writers = []
        do {
            for (i, shard) in shards.enumerated() {
                writers.append(try SafetensorsWriter(
                    url: temporaryDirectory.appendingPathComponent(shardFileNames[i]),
                    tensors: shard, metadata: metadata, overwrite: false))
            }
        } catch {
            writers = []
            try? FileManager.default.removeItem(at: temporaryDirectory)
            if let error = error as? SafetensorsWriterError { throw error.reported(at: url.path) }
            throw error
        }
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

    /// Completes every shard, writes the index and moves the directory into place.
    /// - Throws: ``SafetensorsWriterError/missingTensors(path:tensors:)`` when a tensor was never
    ///   written (nothing is left behind), or a ``FileAccessError``.
    public func finish() throws {
        lock.lock()
        defer { lock.unlock() }
        guard !finished else { throw SafetensorsWriterError.alreadyFinished(path: url.path) }
        finished = true
        defer { try? FileManager.default.removeItem(at: temporaryDirectory) }
        let missing = writers.flatMap(\.unwrittenTensors)
        guard missing.isEmpty else { throw SafetensorsWriterError.missingTensors(path: url.path, tensors: missing) }
        for writer in writers { try writer.finish() }
        let index = try AtomicOutput(
            destination: temporaryDirectory.appendingPathComponent(Self.indexFileName), overwrite: false)
        try index.append(Array(indexJSON().utf8))
        try index.commit()
        try moveIntoPlace()
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

    /// Renames the finished temporary directory to `url`, replacing an existing `url` only when
    /// `overwrite` was given (the old one is moved aside first and deleted after the swap).
    private func moveIntoPlace() throws {
        let manager = FileManager.default
        var backup: URL?
        if manager.fileExists(atPath: url.path) {
            guard overwrite else { throw FileAccessError.alreadyExists(url.path) }
            let aside = temporaryDirectory.deletingLastPathComponent()
                .appendingPathComponent(".\(url.lastPathComponent).qpk-old-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
            guard rename(url.path, aside.path) == 0 else {
                throw FileAccessError.cannotWrite(url.path, String(cString: strerror(errno)))
            }
            backup = aside
        }
        guard rename(temporaryDirectory.path, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            if let backup { _ = rename(backup.path, url.path) }
            throw FileAccessError.cannotWrite(url.path, reason)
        }
        if let backup { try? manager.removeItem(at: backup) }
    }

    deinit {
        if !finished { try? FileManager.default.removeItem(at: temporaryDirectory) }
    }
}
