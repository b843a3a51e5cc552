import Foundation
import FuzzSupport

/// The input is a `model.safetensors.index.json` placed beside three fixed valid shards (the
/// fixtures in fixtures/safetensors/sharded, embedded so the binary runs from anywhere), opened
/// both as the index file and as the folder.
private let shardDirectory: URL = {
    let directory = FuzzInput.directory.appendingPathComponent("sharded")
    try! FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    for index in 1...3 {
        let name = "model-0000\(index)-of-00003.safetensors"
        let header = #"{"layer\#(index).weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#
        var bytes = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { Array($0) }
        bytes += Array(header.utf8) + [UInt8](repeating: 0, count: 16)
        try! Data(bytes).write(to: directory.appendingPathComponent(name))
    }
    return directory
}()

private func fuzzShardedIndex(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    let index = shardDirectory.appendingPathComponent("model.safetensors.index.json")
    try! Data(bytes: data, count: size).write(to: index)
    FuzzInput.exercise(index)
    FuzzInput.exercise(shardDirectory)
    return 0
}

@_cdecl("FuzzShardedIndex_main")
public func main(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runFuzzer(argc, argv) { data, size in fuzzShardedIndex(data, size) }
}
