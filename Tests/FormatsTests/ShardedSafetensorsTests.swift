import Foundation
import Testing
@testable import Formats
import QPKCore

private func copyFixtureShards(to dir: TemporaryDirectory, includingIndex: Bool) throws {
    let source = SafetensorsFixtures.url("sharded")
    for name in try FileManager.default.contentsOfDirectory(atPath: source.path)
    where includingIndex || !name.hasSuffix(".json") {
        try FileManager.default.copyItem(at: source.appendingPathComponent(name), to: dir.file(name))
    }
}

private func floats(_ bytes: TensorBytes) -> [Float] {
    loadValues(bytes, as: UInt32.self).map(Float.init(bitPattern:))
}

@Suite("ShardedSafetensorsReader")
struct ShardedSafetensorsReaderTests {
    /// Shard by shard; inside a shard the reference put the F32 weights before the F16 biases.
    private let expectedOrder = (0..<3).flatMap { shard in
        ["weight", "weight", "bias", "bias"].enumerated().map { "layers.\(2 * shard + $0.offset % 2).\($0.element)" }
    }

    private func checkFixtureContents(_ reader: ShardedSafetensorsReader) throws {
        #expect(reader.shards.count == 3)
        #expect(reader.tensors.map(\.name) == expectedOrder)
        #expect(reader.metadata == ["format": "pt"])
        let weight = try #require(reader.tensor(named: "layers.3.weight"))
        #expect(weight.shape == [4, 4] && weight.dtype == .f32)
        #expect(floats(try reader.denseBytes(of: weight)) == (0..<16).map { Float($0) + 300 })
        let bias = try #require(reader.tensor(named: "layers.5.bias"))
        #expect(loadValues(try reader.denseBytes(of: bias), as: UInt16.self).map { Float(Float16(bitPattern: $0)) } == [5, 5, 5, 5])
        #expect(reader.shard(containing: "layers.4.weight")?.url.lastPathComponent == "model-00003-of-00003.safetensors")
    }

    @Test("reads the fixture directory through its index")
    func directory() throws {
        let reader = try ShardedSafetensorsReader(url: SafetensorsFixtures.url("sharded"))
        try checkFixtureContents(reader)
        #expect(reader.indexURL?.lastPathComponent == "model.safetensors.index.json")
        #expect(reader.totalSize == 432)
        #expect(reader.totalSize == reader.tensors.reduce(0) { $0 + $1.byteCount })
    }

    @Test("reads the index file given directly")
    func indexFile() throws {
        let reader = try ShardedSafetensorsReader(url: SafetensorsFixtures.url("sharded/model.safetensors.index.json"))
        try checkFixtureContents(reader)
    }

    @Test("without an index, reads every *.safetensors file in name order")
    func directoryWithoutIndex() throws {
        let dir = try TemporaryDirectory()
        try copyFixtureShards(to: dir, includingIndex: false)
        let reader = try ShardedSafetensorsReader(url: dir.url)
        try checkFixtureContents(reader)
        #expect(reader.indexURL == nil && reader.totalSize == nil)
    }

    @Test("a shard the index names but the directory lacks is missingShard")
    func missingShard() throws {
        let dir = try TemporaryDirectory()
        try copyFixtureShards(to: dir, includingIndex: true)
        try FileManager.default.removeItem(at: dir.file("model-00002-of-00003.safetensors"))
        #expect(throws: ShardedSafetensorsError.missingShard(
            path: dir.file("model.safetensors.index.json").path, shard: "model-00002-of-00003.safetensors")) {
            try ShardedSafetensorsReader(url: dir.url)
        }
    }

    @Test("index and shards must agree: wrong shard, unlisted tensor, duplicate, unsafe path")
    func disagreements() throws {
        let dir = try TemporaryDirectory()
        try copyFixtureShards(to: dir, includingIndex: false)
        let indexURL = dir.file("model.safetensors.index.json")
        func writeIndex(_ map: [String: String]) throws {
            let entries = map.keys.sorted().map { "\"\($0)\": \"\(map[$0]!)\"" }.joined(separator: ", ")
            try Data("{\"metadata\": {\"total_size\": 432}, \"weight_map\": {\(entries)}}".utf8).write(to: indexURL)
        }
        var map: [String: String] = [:]
        for layer in 0..<6 {
            let shard = "model-0000\(layer / 2 + 1)-of-00003.safetensors"
            map["layers.\(layer).weight"] = shard
            map["layers.\(layer).bias"] = shard
        }
        try writeIndex(map)
        #expect(try ShardedSafetensorsReader(url: dir.url).tensors.count == 12)

        var wrong = map
        wrong["layers.0.weight"] = "model-00002-of-00003.safetensors"
        try writeIndex(wrong)
        #expect(throws: ShardedSafetensorsError.tensorNotInShard(
            path: indexURL.path, tensor: "layers.0.weight", shard: "model-00002-of-00003.safetensors")) {
            try ShardedSafetensorsReader(url: dir.url)
        }

        var missing = map
        missing["layers.0.weight"] = nil
        try writeIndex(missing)
        #expect(throws: ShardedSafetensorsError.unlistedTensor(
            path: indexURL.path, tensor: "layers.0.weight", shard: "model-00001-of-00003.safetensors")) {
            try ShardedSafetensorsReader(url: dir.url)
        }

        var escape = map
        escape["layers.0.weight"] = "../model-00001-of-00003.safetensors"
        try writeIndex(escape)
        #expect(throws: ShardedSafetensorsError.unsafeShardPath(
            path: indexURL.path, tensor: "layers.0.weight", shard: "../model-00001-of-00003.safetensors")) {
            try ShardedSafetensorsReader(url: dir.url)
        }

        try Data(#"{"weight_map": {"a": "x.safetensors", "a": "y.safetensors"}}"#.utf8).write(to: indexURL)
        #expect(throws: ShardedSafetensorsError.self) { try ShardedSafetensorsReader(url: dir.url) }
        try Data(#"{"metadata": {}}"#.utf8).write(to: indexURL)
        #expect(throws: ShardedSafetensorsError.invalidIndex(path: indexURL.path, detail: "missing weight_map")) {
            try ShardedSafetensorsReader(url: dir.url)
        }

        try FileManager.default.removeItem(at: indexURL)
        try FileManager.default.copyItem(at: dir.file("model-00001-of-00003.safetensors"), to: dir.file("copy.safetensors"))
        #expect(throws: ShardedSafetensorsError.duplicateTensor(
            path: dir.url.path, tensor: "layers.0.weight", firstShard: "copy.safetensors",
            secondShard: "model-00001-of-00003.safetensors")) {
            try ShardedSafetensorsReader(url: dir.url)
        }
    }

    @Test("a broken shard reports its own validation error")
    func brokenShard() throws {
        let dir = try TemporaryDirectory()
        try copyFixtureShards(to: dir, includingIndex: true)
        let shard = dir.file("model-00003-of-00003.safetensors")
        let data = try Data(contentsOf: shard)
        try data.prefix(data.count - 1).write(to: shard)
        #expect(throws: SafetensorsError.metadataIncompleteBuffer(
            path: shard.path, expectedSize: UInt64(data.count), fileSize: data.count - 1, isGitLFSPointer: false)) {
            try ShardedSafetensorsReader(url: dir.url)
        }
    }

    @Test("an empty directory is noShards; detection recognises directories and index files")
    func detection() throws {
        let dir = try TemporaryDirectory()
        #expect(throws: ShardedSafetensorsError.noShards(path: dir.url.path)) { try ShardedSafetensorsReader(url: dir.url) }
        #expect(!ShardedSafetensorsReader.isShardedCheckpoint(dir.url))
        #expect(ShardedSafetensorsReader.isShardedCheckpoint(SafetensorsFixtures.url("sharded")))
        #expect(ShardedSafetensorsReader.isShardedCheckpoint(SafetensorsFixtures.url("sharded/model.safetensors.index.json")))
        #expect(!ShardedSafetensorsReader.isShardedCheckpoint(SafetensorsFixtures.url("mixed.safetensors")))
        #expect(!ShardedSafetensorsReader.isShardedCheckpoint(dir.file("nothing")))
    }
}

@Suite("ShardedSafetensorsWriter")
struct ShardedSafetensorsWriterTests {
    /// Nine f32 tensors of 16, 16, 40, 8, 100, 4, 4, 0 and 4 bytes (192 in all).
    private let tensors: [TensorInfo] = [
        TensorInfo(name: "t0", dtype: .f32, shape: [4]),
        TensorInfo(name: "t1", dtype: .f32, shape: [2, 2]),
        TensorInfo(name: "t2", dtype: .f32, shape: [10]),
        TensorInfo(name: "t3", dtype: .f32, shape: [2]),
        TensorInfo(name: "big", dtype: .f32, shape: [25]),
        TensorInfo(name: "t5", dtype: .f32, shape: []),
        TensorInfo(name: "t6", dtype: .f32, shape: [1]),
        TensorInfo(name: "t7", dtype: .f32, shape: [0, 3]),
        TensorInfo(name: "t8", dtype: .f32, shape: [1]),
    ]

    private func values(for tensor: TensorInfo) -> [Float] {
        (0..<tensor.elementCount).map { Float($0) + Float(tensor.name.utf8.reduce(0) { $0 + Int($1) }) }
    }

    private func storage(for tensor: TensorInfo) -> TensorStorage {
        var out: [UInt8] = []
        for value in values(for: tensor) { withUnsafeBytes(of: value.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        return .dense(TensorBytes(copying: out))
    }

    @Test("greedy assignment: no shard over the limit unless one tensor alone is larger")
    func assignment() throws {
        let dir = try TemporaryDirectory()
        let writer = try ShardedSafetensorsWriter(
            url: dir.file("out"), tensors: tensors, metadata: [:], maxShardSize: 40, overwrite: false)
        #expect(writer.shardContents.map { $0.map(\.name) } == [["t0", "t1"], ["t2"], ["t3"], ["big"], ["t5", "t6", "t7", "t8"]])
        #expect(writer.shardFileNames == (1...5).map { "model-0000\($0)-of-00005.safetensors" })
    }

    @Test("writes shards and an index that read back, in any write order")
    func roundTrip() throws {
        let dir = try TemporaryDirectory()
        let out = dir.file("out")
        let writer = try ShardedSafetensorsWriter(
            url: out, tensors: tensors, metadata: ["format": "pt"], maxShardSize: 40, overwrite: false)
        for tensor in tensors.reversed() { try writer.write(tensor, storage: storage(for: tensor)) }
        // A new folder is built under a hidden temporary name and appears only complete.
        #expect(!FileManager.default.fileExists(atPath: out.path))
        #expect(try dir.contents().count == 1 && dir.contents()[0].hasPrefix(".out\(TemporaryFiles.marker)"))
        try writer.finish()
        let names = try FileManager.default.contentsOfDirectory(atPath: out.path).sorted()
        #expect(names == writer.shardFileNames + ["model.safetensors.index.json"])
        let reader = try ShardedSafetensorsReader(url: out)
        #expect(Set(reader.tensors.map(\.name)) == Set(tensors.map(\.name)))
        #expect(reader.metadata == ["format": "pt"])
        #expect(reader.totalSize == tensors.reduce(0) { $0 + $1.byteCount })
        for shard in reader.shards { #expect(shard.metadata == ["format": "pt"]) }
        for tensor in tensors {
            #expect(reader.tensor(named: tensor.name) == tensor)
            #expect(floats(try reader.denseBytes(of: tensor)) == values(for: tensor))
        }
        let index = String(decoding: try Data(contentsOf: out.appendingPathComponent("model.safetensors.index.json")), as: UTF8.self)
        #expect(index.hasPrefix("{\n  \"metadata\": {\n    \"total_size\": 192\n  },\n  \"weight_map\": {\n    \"big\": \"model-00004-of-00005.safetensors\",\n"))
        #expect(try dir.contents() == ["out"])
    }

    @Test("the fixture re-sharded into one shard and back keeps every tensor")
    func reshard() throws {
        let source = try ShardedSafetensorsReader(url: SafetensorsFixtures.url("sharded"))
        let dir = try TemporaryDirectory()
        let writer = try ShardedSafetensorsWriter(
            url: dir.file("one"), tensors: source.tensors, metadata: source.metadata, maxShardSize: 1 << 30, overwrite: false)
        for tensor in source.tensors { try writer.write(tensor, storage: try source.storage(of: tensor)) }
        try writer.finish()
        let reader = try ShardedSafetensorsReader(url: dir.file("one"))
        #expect(reader.shards.count == 1)
        for tensor in source.tensors {
            #expect(Array(try reader.denseBytes(of: tensor).bytes) == Array(try source.denseBytes(of: tensor).bytes))
        }
    }

    @Test("writes into a folder with other files; overwrite replaces only its own shards and index")
    func overwrite() throws {
        let dir = try TemporaryDirectory()
        let out = dir.file("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: false)
        try Data([1]).write(to: out.appendingPathComponent("config.json"))
        let first = try ShardedSafetensorsWriter(url: out, tensors: tensors, metadata: [:], maxShardSize: 40, overwrite: false)
        for tensor in tensors { try first.write(tensor, storage: storage(for: tensor)) }
        try first.finish()
        #expect(first.shardFileNames.count == 5)
        // Same names again: refused without overwrite, before anything is written.
        #expect(throws: FileAccessError.alreadyExists(out.appendingPathComponent(first.shardFileNames[0]).path)) {
            try ShardedSafetensorsWriter(url: out, tensors: tensors, metadata: [:], maxShardSize: 40, overwrite: false)
        }
        try Data([2]).write(to: out.appendingPathComponent("model-00001-of-00007.safetensors"))
        let before = try FileManager.default.contentsOfDirectory(atPath: out.path).sorted()
        let writer = try ShardedSafetensorsWriter(url: out, tensors: tensors, metadata: [:], maxShardSize: 64, overwrite: true)
        for tensor in tensors { try writer.write(tensor, storage: storage(for: tensor)) }
        // Until finish(), the new files live in one hidden folder inside `out`; nothing else changed.
        let during = try FileManager.default.contentsOfDirectory(atPath: out.path).sorted()
        #expect(during.filter { !$0.hasPrefix(".") } == before)
        #expect(during.filter { $0.hasPrefix(".out\(TemporaryFiles.marker)") }.count == 1)
        try writer.finish()
        // The five old shards were listed by the old index: the ones not rewritten are gone; the
        // config and the unlisted shard-like file are not qpk's and stay.
        #expect(try FileManager.default.contentsOfDirectory(atPath: out.path).sorted()
            == (["config.json", "model-00001-of-00007.safetensors"] + writer.shardFileNames + ["model.safetensors.index.json"]).sorted())
        #expect(try ShardedSafetensorsReader(url: out.appendingPathComponent("model.safetensors.index.json")).tensors.count == tensors.count)
        #expect(try dir.contents() == ["out"])
    }

    @Test("a file where the folder should be, or a missing parent, is a one-line cannotWrite")
    func notAFolder() throws {
        let dir = try TemporaryDirectory()
        let file = dir.file("file")
        try Data([1]).write(to: file)
        for url in [file, dir.file("absent/out")] {
            #expect {
                try ShardedSafetensorsWriter(url: url, tensors: tensors, metadata: [:], maxShardSize: 64, overwrite: true)
            } throws: { error in
                if case .cannotWrite? = error as? FileAccessError { return true }
                return false
            }
        }
        #expect(try dir.contents() == ["file"])
    }

    @Test("only model-NNNNN-of-NNNNN.safetensors names count as qpk's shards")
    func shardNames() {
        #expect(ShardedSafetensorsWriter.isQPKShardName("model-00001-of-00002.safetensors"))
        #expect(ShardedSafetensorsWriter.isQPKShardName("model-123456-of-123456.safetensors"))
        #expect(!ShardedSafetensorsWriter.isQPKShardName("model.safetensors"))
        #expect(!ShardedSafetensorsWriter.isQPKShardName("model-1-of-2.safetensors"))
        #expect(!ShardedSafetensorsWriter.isQPKShardName("adapter-00001-of-00002.safetensors"))
        #expect(!ShardedSafetensorsWriter.isQPKShardName("../model-00001-of-00002.safetensors"))
    }

    @Test("an index with an empty weight_map is emptyWeightMap")
    func emptyWeightMap() throws {
        let dir = try TemporaryDirectory()
        let index = dir.file("model.safetensors.index.json")
        try Data(#"{"metadata":{"total_size":0},"weight_map":{}}"#.utf8).write(to: index)
        #expect(throws: ShardedSafetensorsError.emptyWeightMap(path: index.path)) { try ShardedSafetensorsReader(url: index) }
        #expect(ShardedSafetensorsError.emptyWeightMap(path: index.path).ruleName == "EmptyWeightMap")
    }

    @Test("a failed or dropped writer leaves nothing behind")
    func failure() throws {
        let dir = try TemporaryDirectory()
        let out = dir.file("out")
        do {
            let writer = try ShardedSafetensorsWriter(url: out, tensors: tensors, metadata: [:], maxShardSize: 40, overwrite: false)
            try writer.write(tensors[0], storage: storage(for: tensors[0]))
            #expect(throws: SafetensorsWriterError.wrongByteCount(path: out.path, tensor: "t1", expected: 16, actual: 4)) {
                try writer.write(tensors[1], storage: .dense(TensorBytes(copying: [UInt8](repeating: 0, count: 4))))
            }
            #expect(throws: SafetensorsWriterError.missingTensors(path: out.path, tensors: ["t1", "t2", "t3", "big", "t5", "t6", "t7", "t8"])) {
                try writer.finish()
            }
        }
        #expect(try dir.contents() == [])
        do {
            let writer = try ShardedSafetensorsWriter(url: out, tensors: tensors, metadata: [:], maxShardSize: 40, overwrite: false)
            try writer.write(tensors[1], storage: storage(for: tensors[1]))
        }
        #expect(try dir.contents() == [])
        #expect(throws: SafetensorsWriterError.reservedName(path: out.path, name: "__metadata__")) {
            try ShardedSafetensorsWriter(
                url: out, tensors: [TensorInfo(name: "__metadata__", dtype: .u8, shape: [1])], metadata: [:], maxShardSize: 40, overwrite: false)
        }
        #expect(try dir.contents() == [])
        #expect(throws: SafetensorsWriterError.invalidShardSize(path: out.path, size: 0)) {
            try ShardedSafetensorsWriter(url: out, tensors: tensors, metadata: [:], maxShardSize: 0, overwrite: false)
        }
    }
}
