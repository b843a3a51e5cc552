import Foundation
@testable import Formats
import QPKCore

/// Where the committed fixtures live: `<repo>/fixtures/safetensors`, found from this file's path.
enum SafetensorsFixtures {
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // FormatsTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // repository root
        .appendingPathComponent("fixtures/safetensors")

    static func url(_ relativePath: String) -> URL { root.appendingPathComponent(relativePath) }

    /// `invalid/expected.json`: fixture file name → the rule the Python reference rejects it with.
    static func expectedInvalid() throws -> [String: String] {
        let data = try Data(contentsOf: url("invalid/expected.json"))
        return try JSONDecoder().decode([String: String].self, from: data)
    }
}

/// A fresh temporary directory, removed (with its contents) when the value is released.
final class TemporaryDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("qpk-safetensors-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> URL { url.appendingPathComponent(name) }

    /// Writes `bytes` to `name` and returns its URL.
    func write(_ bytes: [UInt8], to name: String = "test.safetensors") throws -> URL {
        let target = file(name)
        try Data(bytes).write(to: target)
        return target
    }

    /// The names in the directory, hidden files included, sorted.
    func contents() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: url.path).sorted()
    }

    deinit { try? FileManager.default.removeItem(at: url) }
}

/// Builds a safetensors file by hand: 8-byte little-endian length, header, buffer.
func safetensorsBytes(header: String, buffer: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
    safetensorsBytes(headerBytes: Array(header.utf8), buffer: buffer, declaredLength: declaredLength)
}

func safetensorsBytes(headerBytes: [UInt8], buffer: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
    var length = declaredLength ?? UInt64(headerBytes.count)
    var bytes: [UInt8] = []
    for _ in 0..<8 {
        bytes.append(UInt8(truncatingIfNeeded: length))
        length >>= 8
    }
    return bytes + headerBytes + buffer
}

/// Reads `count` little-endian values of `T` from `bytes`.
func loadValues<T: FixedWidthInteger>(_ bytes: TensorBytes, as _: T.Type) -> [T] {
    bytes.withUnsafeBytes { raw in
        (0..<(raw.count / MemoryLayout<T>.size)).map {
            T(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self))
        }
    }
}

extension SafetensorsError {
    /// Whether two errors break the same rule (ignoring the associated values).
    func sameRule(as other: SafetensorsError) -> Bool { ruleName == other.ruleName }
}
