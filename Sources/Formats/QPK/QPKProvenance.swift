import Foundation
import QPKCore

/// Where a QPK file came from (`spec/qpk-format.md` §4.7): the source files, identified by name,
/// size and the SHA-256 of their header bytes, plus the qpk version and the command that wrote it.
public struct QPKProvenance: Codable, Sendable, Equatable {
    /// One source checkpoint file.
    public struct Source: Codable, Sendable, Equatable {
        /// The file's last path component.
        public var name: String
        /// The file's size in bytes.
        public var size: Int
        /// Lower-case hex SHA-256 of the file's header bytes (see ``QPKProvenance/sha256Hex(ofHeaderOf:)``).
        public var headerSHA256: String

        public init(name: String, size: Int, headerSHA256: String) {
            self.name = name
            self.size = size
            self.headerSHA256 = headerSHA256
        }

        enum CodingKeys: String, CodingKey {
            case name, size
            case headerSHA256 = "header_sha256"
        }
    }

    /// The file whose values replaced the outlier values after quantization
    /// (`qpk convert IN.qpk OUT.qpk --outlier-values FILE`, spec §4.7 `tuned_outliers_from`).
    public struct TunedOutliers: Codable, Sendable, Equatable {
        /// The values file's last path component.
        public var name: String
        /// Its size in bytes.
        public var size: Int
        /// Lower-case hex SHA-256 of the whole values file.
        public var sha256: String
        /// The outlier values replaced (every outlier value of the file).
        public var values: Int
        /// How many of them differ from the values they replaced.
        public var changed: Int

        public init(name: String, size: Int, sha256: String, values: Int, changed: Int) {
            self.name = name
            self.size = size
            self.sha256 = sha256
            self.values = values
            self.changed = changed
        }
    }

    public var sources: [Source]
    /// The version of qpk that wrote the file.
    public var qpkVersion: String
    /// Free text, e.g. the command line.
    public var createdBy: String
    /// Set when the outlier values were replaced after quantization (fine-tuned); `nil` otherwise.
    public var tunedOutliersFrom: TunedOutliers?

    public init(sources: [Source], qpkVersion: String, createdBy: String, tunedOutliersFrom: TunedOutliers? = nil) {
        self.sources = sources
        self.qpkVersion = qpkVersion
        self.createdBy = createdBy
        self.tunedOutliersFrom = tunedOutliersFrom
    }

    enum CodingKeys: String, CodingKey {
        case sources
        case qpkVersion = "qpk_version"
        case createdBy = "created_by"
        case tunedOutliersFrom = "tuned_outliers_from"
    }

    /// The qpk release recorded by ``describing(sources:qpkVersion:createdBy:)`` by default.
    public static let currentQPKVersion = "0.1.0"

    /// The provenance of a file made from `sources` (each described by ``source(describing:)``),
    /// created by the current command line unless `createdBy` says otherwise.
    /// - Throws: ``FileAccessError`` when a source cannot be read.
    public static func describing(
        sources: [URL], qpkVersion: String = currentQPKVersion, createdBy: String? = nil
    ) throws -> QPKProvenance {
        let commandLine = (["qpk"] + CommandLine.arguments.dropFirst()).joined(separator: " ")
        return QPKProvenance(
            sources: try sources.map(source(describing:)), qpkVersion: qpkVersion, createdBy: createdBy ?? commandLine)
    }

    /// The bytes of a file that identify it without hashing its weights: for a safetensors file
    /// the 8-byte length prefix and the JSON header (`8 + N` bytes); for anything else the first
    /// `min(size, 1 MiB)` bytes (`spec/qpk-format.md` §4.7).
    public static func headerByteCount(of prefix: UnsafeRawBufferPointer, fileSize: Int) -> Int {
        if prefix.count >= 9, fileSize >= 9 {
            let n = prefix.loadLittleEndian(UInt64.self, at: 0)
            if n <= 100_000_000, Int(n) + 8 <= fileSize, prefix[8] == UInt8(ascii: "{") {
                return Int(n) + 8
            }
        }
        return min(fileSize, 1 << 20)
    }

    /// The lower-case hex SHA-256 of the header bytes of the file at `url` (see
    /// ``headerByteCount(of:fileSize:)``).
    /// - Throws: ``FileAccessError`` when the file cannot be read.
    public static func sha256Hex(ofHeaderOf url: URL) throws -> String {
        let file = try MappedFile(url: url)
        let count = headerByteCount(of: file.bytes, fileSize: file.bytes.count)
        return SHA256Hex.digest(of: UnsafeRawBufferPointer(rebasing: file.bytes[0..<count]))
    }

    /// The provenance entry for the file at `url`: its name, size and header hash.
    public static func source(describing url: URL) throws -> Source {
        let file = try MappedFile(url: url)
        let count = headerByteCount(of: file.bytes, fileSize: file.bytes.count)
        let digest = SHA256Hex.digest(of: UnsafeRawBufferPointer(rebasing: file.bytes[0..<count]))
        return Source(name: url.lastPathComponent, size: file.bytes.count, headerSHA256: digest)
    }
}
