import Foundation
import QPKCore

/// An importance matrix: for each weight matrix, the sum of the squares of its input activations
/// per input column, and how many input rows (tokens) were summed — llama.cpp's `imatrix`
/// (spec/gguf.md §9). The mean `E[x_j²] = sum_j / count` weights column `j` of the weight's
/// quantization error, the diagonal of GPTQ's Hessian `2/n·Σ x xᵀ` up to the factor 2.
///
/// Two files hold it:
/// - **GGUF** (llama.cpp's current format, what qpk writes): `general.type = "imatrix"`,
///   `imatrix.datasets` (array of strings), `imatrix.chunk_count` and `imatrix.chunk_size` (u32),
///   and per weight `NAME.in_sum2` (F32, row-major `[experts, columns]`) and `NAME.counts` (F32,
///   `[experts, 1]`).
/// - **Legacy `.dat`** (llama.cpp's first format, read only): little-endian int32 entry count;
///   per entry int32 name length, the name, int32 `ncall`, int32 value count and that many F32
///   values holding `mean · ncall`; then int32 chunk count, int32 length and the dataset name.
///   Its counts are `ncall` (the means are exact; the token counts are not recorded).
public struct ImportanceMatrix: Sendable, Equatable {
    /// The statistics of one weight's input.
    public struct Entry: Sendable, Equatable {
        /// Σ x_j² per column, one row of `columns` values per expert (one row for a dense layer).
        public var sumOfSquares: [Float]
        /// Rows summed, one per expert.
        public var counts: [Float]

        public init(sumOfSquares: [Float], counts: [Float]) {
            self.sumOfSquares = sumOfSquares
            self.counts = counts
        }

        /// The input width.
        public var columns: Int { counts.isEmpty ? 0 : sumOfSquares.count / counts.count }

        /// `E[x_j²]` per column, pooled over the experts (rows of experts never used count zero).
        public var meanSquares: [Float] {
            let n = columns
            let total = counts.reduce(0, +)
            guard n > 0, total > 0 else { return [Float](repeating: 0, count: n) }
            var sums = [Double](repeating: 0, count: n)
            for expert in counts.indices {
                for j in 0..<n { sums[j] += Double(sumOfSquares[expert * n + j]) }
            }
            return sums.map { Float($0 / Double(total)) }
        }
    }

    /// Entries keyed by the weight's tensor name (`blk.0.attn_q.weight`, or a checkpoint's own
    /// names).
    public var entries: [String: Entry]
    /// Where the statistics came from (file names of the calibration text).
    public var datasets: [String]
    /// Chunks (calibration sequences) processed.
    public var chunkCount: Int
    /// Tokens per chunk (at most).
    public var chunkSize: Int

    public init(entries: [String: Entry], datasets: [String], chunkCount: Int, chunkSize: Int) {
        self.entries = entries
        self.datasets = datasets
        self.chunkCount = chunkCount
        self.chunkSize = chunkSize
    }

    static let inSum2Suffix = ".in_sum2"
    static let countsSuffix = ".counts"
    static let typeKey = "general.type"
    static let datasetsKey = "imatrix.datasets"
    static let chunkCountKey = "imatrix.chunk_count"
    static let chunkSizeKey = "imatrix.chunk_size"

    /// Reads a GGUF or legacy `.dat` importance matrix (told apart by the GGUF magic).
    /// - Throws: ``FileAccessError``, ``GGUFError`` for a broken GGUF file, ``ImportanceMatrixError``
    ///   for a file that is not a valid importance matrix.
    public init(contentsOf url: URL) throws {
        let file = try MappedFile(url: url)
        if GGUFReader.hasGGUFMagic(UnsafeRawBufferPointer(rebasing: file.bytes.prefix(4))) {
            self = try Self.readGGUF(GGUFReader(url: url))
        } else {
            self = try Self.readLegacy(file.bytes, path: url.path)
        }
    }

    static func readGGUF(_ reader: GGUFReader) throws -> ImportanceMatrix {
        let path = reader.url.path
        guard case let .string(type)? = reader.value(forKey: typeKey), type == "imatrix" else {
            throw ImportanceMatrixError.notImportanceMatrix(path: path, detail: "general.type is not \"imatrix\"")
        }
        var datasets: [String] = []
        if case let .array(_, values)? = reader.value(forKey: datasetsKey) {
            datasets = values.compactMap { if case let .string(text) = $0 { text } else { nil } }
        }
        let chunkCount = reader.value(forKey: chunkCountKey)?.unsignedValue.map(Int.init) ?? 0
        let chunkSize = reader.value(forKey: chunkSizeKey)?.unsignedValue.map(Int.init) ?? 0
        var entries: [String: Entry] = [:]
        for info in reader.tensors where info.name.hasSuffix(inSum2Suffix) {
            let name = String(info.name.dropLast(inSum2Suffix.count))
            let countsName = name + countsSuffix
            guard reader.ggmlType(of: info.name) == .f32, info.shape.count <= 2, let columns = info.shape.last, columns > 0 else {
                throw ImportanceMatrixError.invalidEntry(path: path, tensor: info.name, detail: "in_sum2 must be an F32 [experts, columns] tensor")
            }
            let experts = info.shape.count == 2 ? info.shape[0] : 1
            guard let countsInfo = reader.tensor(named: countsName) else {
                throw ImportanceMatrixError.invalidEntry(path: path, tensor: info.name, detail: "no \(countsName) tensor beside it")
            }
            guard reader.ggmlType(of: countsName) == .f32, countsInfo.elementCount == experts else {
                throw ImportanceMatrixError.invalidEntry(
                    path: path, tensor: countsName, detail: "counts must be F32 with one value per expert (\(experts))")
            }
            let sums = try floats(reader, info)
            let counts = try floats(reader, countsInfo)
            guard sums.allSatisfy({ $0.isFinite && $0 >= 0 }), counts.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
                throw ImportanceMatrixError.invalidEntry(path: path, tensor: info.name, detail: "sums and counts must be finite and non-negative")
            }
            entries[name] = Entry(sumOfSquares: sums, counts: counts)
        }
        guard !entries.isEmpty else {
            throw ImportanceMatrixError.notImportanceMatrix(path: path, detail: "no NAME.in_sum2 tensor")
        }
        return ImportanceMatrix(entries: entries, datasets: datasets, chunkCount: chunkCount, chunkSize: chunkSize)
    }

    private static func floats(_ reader: GGUFReader, _ info: TensorInfo) throws -> [Float] {
        let bytes = try reader.storedBytes(of: info.name)
        return bytes.withUnsafeBytes { raw in
            (0..<info.elementCount).map { Float(bitPattern: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self).littleEndian) }
        }
    }

    /// Parses the legacy format with a bounds check before every read.
    static func readLegacy(_ bytes: UnsafeRawBufferPointer, path: String) throws -> ImportanceMatrix {
        var cursor = LegacyCursor(bytes: bytes, path: path)
        let count = try cursor.count("entry count", elementSize: 12)
        var entries: [String: Entry] = [:]
        for _ in 0..<count {
            let nameLength = try cursor.count("name length", elementSize: 1)
            let name = try cursor.string(nameLength, what: "entry name")
            let calls = try cursor.int32("ncall of \(name)")
            let values = try cursor.count("value count of \(name)", elementSize: 4)
            guard calls > 0, values > 0 else {
                throw ImportanceMatrixError.invalidEntry(path: path, tensor: name, detail: "ncall and the value count must be positive")
            }
            let sums = try cursor.floats(values, what: "values of \(name)")
            guard sums.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
                throw ImportanceMatrixError.invalidEntry(path: path, tensor: name, detail: "values must be finite and non-negative")
            }
            guard entries.updateValue(Entry(sumOfSquares: sums, counts: [Float(calls)]), forKey: name) == nil else {
                throw ImportanceMatrixError.duplicateEntry(path: path, tensor: name)
            }
        }
        var chunkCount = 0
        var datasets: [String] = []
        if !cursor.atEnd {
            chunkCount = Int(try cursor.int32("chunk count"))
            if !cursor.atEnd {
                let length = try cursor.count("dataset name length", elementSize: 1)
                datasets = [try cursor.string(length, what: "dataset name")]
            }
        }
        guard !entries.isEmpty else {
            throw ImportanceMatrixError.notImportanceMatrix(path: path, detail: "the legacy file holds no entry")
        }
        return ImportanceMatrix(entries: entries, datasets: datasets, chunkCount: max(0, chunkCount), chunkSize: 0)
    }

    /// Writes the GGUF form to `url` (atomically; entries in name order, as llama.cpp does).
    /// - Parameter overwrite: replace an existing file (`--force`).
    public func write(to url: URL, overwrite: Bool) throws {
        let names = entries.keys.sorted()
        var declarations: [GGUFTensorDeclaration] = []
        for name in names {
            let entry = entries[name]!
            declarations.append(GGUFTensorDeclaration(
                info: TensorInfo(name: name + Self.inSum2Suffix, dtype: .f32, shape: [entry.counts.count, entry.columns]), type: .f32))
            declarations.append(GGUFTensorDeclaration(
                info: TensorInfo(name: name + Self.countsSuffix, dtype: .f32, shape: [entry.counts.count, 1]), type: .f32))
        }
        let metadata: [(key: String, value: GGUFValue)] = [
            (Self.typeKey, .string("imatrix")),
            (Self.datasetsKey, .array(.string, datasets.map(GGUFValue.string))),
            (Self.chunkCountKey, .uint32(UInt32(clamping: chunkCount))),
            (Self.chunkSizeKey, .uint32(UInt32(clamping: chunkSize))),
        ]
        let writer = try GGUFWriter(url: url, tensors: declarations, metadata: metadata, overwrite: overwrite)
        for (index, declaration) in declarations.enumerated() {
            let entry = entries[names[index / 2]]!
            let values = index % 2 == 0 ? entry.sumOfSquares : entry.counts
            try writer.write(declaration.info, storage: .dense(TensorBytes(copying: Self.littleEndianBytes(values))))
        }
        try writer.finish()
    }

    static func littleEndianBytes(_ values: [Float]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(values.count * 4)
        for value in values {
            withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 }
        }
        return bytes
    }
}

/// Reads the legacy format's little-endian fields, refusing any read past the end.
private struct LegacyCursor {
    let bytes: UnsafeRawBufferPointer
    let path: String
    var offset = 0

    var atEnd: Bool { offset >= bytes.count }

    mutating func int32(_ what: String) throws -> Int32 {
        guard bytes.count - offset >= 4 else { throw ImportanceMatrixError.truncated(path: path, what: what) }
        defer { offset += 4 }
        return Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: Int32.self))
    }

    /// A non-negative int32 count whose `elementSize`-byte elements fit in the rest of the file.
    mutating func count(_ what: String, elementSize: Int) throws -> Int {
        let value = try int32(what)
        guard value >= 0, Int(value) <= (bytes.count - offset) / elementSize else {
            throw ImportanceMatrixError.truncated(path: path, what: "\(what) \(value)")
        }
        return Int(value)
    }

    mutating func string(_ length: Int, what: String) throws -> String {
        guard bytes.count - offset >= length else { throw ImportanceMatrixError.truncated(path: path, what: what) }
        defer { offset += length }
        guard let text = String(validating: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)]), as: UTF8.self) else {
            throw ImportanceMatrixError.notImportanceMatrix(path: path, detail: "\(what) is not UTF-8")
        }
        return text
    }

    mutating func floats(_ count: Int, what: String) throws -> [Float] {
        guard (bytes.count - offset) / 4 >= count else { throw ImportanceMatrixError.truncated(path: path, what: what) }
        defer { offset += count * 4 }
        return (0..<count).map {
            Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset + $0 * 4, as: UInt32.self)))
        }
    }
}

/// Why a file is not a usable importance matrix (its GGUF structure is checked by ``GGUFError``).
public enum ImportanceMatrixError: CheckpointDiagnosable, Equatable, Sendable {
    /// A GGUF file that is not an imatrix, or a legacy file that holds nothing.
    case notImportanceMatrix(path: String, detail: String)
    /// A legacy file ends inside a field.
    case truncated(path: String, what: String)
    /// An entry's shape, counts or values are impossible.
    case invalidEntry(path: String, tensor: String, detail: String)
    /// Two legacy entries share a name.
    case duplicateEntry(path: String, tensor: String)

    public var diagnostic: CheckpointDiagnostic {
        switch self {
        case let .notImportanceMatrix(path, detail):
            CheckpointDiagnostic(
                file: path, rule: "not_importance_matrix", detail: detail,
                hint: "give an importance matrix written by `qpk calibrate` or llama.cpp's llama-imatrix")
        case let .truncated(path, what):
            CheckpointDiagnostic(file: path, rule: "truncated", detail: "the file ends inside the \(what)")
        case let .invalidEntry(path, tensor, detail):
            CheckpointDiagnostic(file: path, tensor: tensor, rule: "invalid_entry", detail: detail)
        case let .duplicateEntry(path, tensor):
            CheckpointDiagnostic(file: path, tensor: tensor, rule: "duplicate_entry", detail: "the name appears twice")
        }
    }
}
