import Foundation
import QPKCore

extension CheckpointFormat {
    /// Detects the format of the checkpoint at `url` by its magic bytes.
    ///
    /// A directory, or a `*.safetensors.index.json`, is a sharded safetensors checkpoint. Files
    /// without a recognised signature fall back to their extension, so that a truncated
    /// `.safetensors` still reaches the safetensors validator (which says what is wrong).
    public static func detect(_ url: URL) throws -> (format: CheckpointFormat, sharded: Bool) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw FileAccessError.cannotOpen(url.path, "No such file or directory")
        }
        try FileAccessError.requireRegularFileOrDirectory(url.path)
        if isDirectory.boolValue || url.lastPathComponent.hasSuffix(".index.json") {
            return (.safetensors, true)
        }
        let file = try MappedFile(url: url)
        let prefix = UnsafeRawBufferPointer(rebasing: file.bytes.prefix(16))
        if QPKReader.hasQPKMagic(prefix) { return (.qpk, false) }
        if GGUFReader.hasGGUFMagic(prefix) { return (.gguf, false) }
        if HDF5Reader.hasHDF5Signature(url) { return (.hdf5, false) }
        if SafetensorsReader.looksLikeSafetensors(
            UnsafeRawBufferPointer(rebasing: file.bytes.prefix(64)), fileSize: file.bytes.count) {
            return (.safetensors, false)
        }
        if let format = CheckpointFormat(pathExtension: url.pathExtension) { return (format, false) }
        throw CheckpointError.unknownFormat(url.path)
    }

    /// The format an output path asks for, by its extension.
    public init?(pathExtension: String) {
        switch pathExtension.lowercased() {
        case "safetensors": self = .safetensors
        case "h5", "hdf5", "he5", "keras", "weights.h5": self = .hdf5
        case "qpk": self = .qpk
        case "gguf": self = .gguf
        default: return nil
        }
    }
}

/// Opens any supported checkpoint.
public enum Checkpoint {
    /// Opens `url` with the reader for its detected format.
    public static func open(_ url: URL) throws -> any CheckpointReader {
        let (format, sharded) = try CheckpointFormat.detect(url)
        switch format {
        case .safetensors:
            let reader: any CheckpointReader = sharded ? try ShardedSafetensorsReader(url: url) : try SafetensorsReader(url: url)
            // MLX and GPTQ folders read as the float weights they pack.
            return try RuntimeLayoutReader.wrapping(reader) ?? reader
        case .hdf5:
            return try HDF5Reader(url: url)
        case .qpk:
            return try QPKReader(url: url)
        case .gguf:
            return try GGUFReader(url: url)
        }
    }

    /// The files that make up the checkpoint at `url` (the shards of a sharded checkpoint).
    public static func sourceFiles(of reader: any CheckpointReader) -> [URL] {
        if let packed = reader as? RuntimeLayoutReader { return sourceFiles(of: packed.underlying) }
        if let sharded = reader as? ShardedSafetensorsReader { return sharded.shards.map(\.url) }
        return [reader.url]
    }
}
