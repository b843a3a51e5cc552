import Foundation
@testable import Formats
import QPKCore

/// Builds GGUF files byte by byte, so each validation rule can be broken on purpose.
struct GGUFBytes {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func string(_ s: String) {
        u64(UInt64(s.utf8.count))
        bytes += Array(s.utf8)
    }

    /// Magic, version, tensor count, KV count.
    static func header(version: UInt32 = 3, tensors: UInt64, kvs: UInt64) -> GGUFBytes {
        var b = GGUFBytes()
        b.bytes = Array("GGUF".utf8)
        b.u32(version)
        b.u64(tensors)
        b.u64(kvs)
        return b
    }

    /// A tensor info: name, `ne` (innermost first), ggml type, offset.
    mutating func tensorInfo(_ name: String, ne: [UInt64], type: UInt32, offset: UInt64) {
        string(name)
        u32(UInt32(ne.count))
        for d in ne { u64(d) }
        u32(type)
        u64(offset)
    }

    /// Zero bytes up to the next multiple of `alignment`.
    mutating func pad(_ alignment: Int = 32) {
        while bytes.count % alignment != 0 { bytes.append(0) }
    }

    /// A valid file: a uint32 KV and two F32 tensors `a` (ne [4]) and `b` (ne [2, 3]).
    static func valid() -> GGUFBytes {
        var b = header(tensors: 2, kvs: 1)
        b.string("general.name")
        b.u32(8)
        b.string("tiny")
        b.tensorInfo("a", ne: [4], type: 0, offset: 0)
        b.tensorInfo("b", ne: [2, 3], type: 0, offset: 32)
        b.pad()
        for i in 0..<4 { b.u32(Float(i).bitPattern) }
        b.pad()
        for i in 0..<6 { b.u32(Float(10 + i).bitPattern) }
        return b
    }
}

enum GGUFFixtures {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fixtures/gguf")

    static func url(_ name: String) -> URL { root.appendingPathComponent(name) }
}

/// Opens `bytes` as a GGUF file and returns its validation error, `nil` when valid.
func ggufError(_ bytes: [UInt8], in directory: TemporaryDirectory) throws -> GGUFError? {
    let url = try directory.write(bytes, to: "test.gguf")
    do {
        _ = try GGUFReader(url: url)
        return nil
    } catch let error as GGUFError {
        return error
    }
}
