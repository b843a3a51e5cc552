import Foundation
@testable import Formats
import QPKCore

/// Fixture paths and helpers shared by the HDF5 suites.
enum HDF5Fixtures {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fixtures/hdf5")

    static func url(_ name: String) -> URL { directory.appendingPathComponent(name) }

    /// A fresh temporary directory, removed by `cleanup`.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("qpk-hdf5-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func floats(_ reader: HDF5Reader, _ name: String) throws -> [Float] {
        let info = try #require(reader.tensor(named: name))
        return try reader.denseBytes(of: info).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    static func bytes(_ reader: some CheckpointReader, _ name: String) throws -> [UInt8] {
        let info = try #require(reader.tensor(named: name))
        return try reader.denseBytes(of: info).withUnsafeBytes { Array($0) }
    }

    /// Copies every tensor of `reader` into a new HDF5 file at `url`.
    static func copy(_ reader: some CheckpointReader, to url: URL, metadata: [String: String]? = nil,
                     compression: HDF5Compression? = nil) throws {
        let writer = try HDF5Writer(
            url: url, tensors: reader.tensors, metadata: metadata ?? reader.metadata, overwrite: false,
            compression: compression)
        for tensor in reader.tensors.reversed() { try writer.write(tensor, storage: reader.storage(of: tensor)) }
        try writer.finish()
    }
}

import Testing
