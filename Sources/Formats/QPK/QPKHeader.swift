import Foundation
import QPKCore

/// The JSON header as it is written (`spec/qpk-format.md` §4). Enumerated fields are strings
/// here so that an unknown value becomes a named validation problem, not a decoding failure.
struct QPKHeaderDocument: Codable {
    struct Blob: Codable {
        var offset: Int
        var length: Int
        var crc32: UInt32
    }

    /// §4.3: the layout (`scheme`, `bits`, `group_size`, `axis`), the method tag, and the rest of
    /// the tensor's ``QuantizationDecision`` (optional keys: absent in files written before them).
    struct Quantization: Codable {
        var scheme: String
        var bits: Int
        var groupSize: Int
        var axis: Int
        var method: String
        var scaleSearch: String?
        var outlierKind: String?
        var outlierBudget: Double?
        var maxBitsPerWeight: Double?
        var importance: String?
        /// v2 (§4.3, informative): how the codebook was made (`"nf4"`, `"lloyd"`); written with
        /// the other decision keys when there is a codebook.
        var codebookKind: String?
        /// v2 (§5.3): `"f16"` (or absent), `"packed"` or `"none"`; written only when not f16.
        var zeroPoints: String?
        /// v2 (§5.6): the transform, written only when there is one.
        var transform: Transform?
        /// v2 (§5.5): `true` when a `group_index` blob is present; written only then.
        var groupIndex: Bool?
        /// v2 (§5.7): `true` when a `codebook` blob is present; written only then.
        var codebook: Bool?
        /// v2 (§5.8): `{"bits": K, "octaves": O}` for log-coded group scales; written only then.
        /// Kept as JSON so that a missing or non-integer member is rule 31, not a decoding failure.
        var scaleCodes: QPKJSONValue?

        typealias CodingKeys = QuantizationDecision.CodingKeys

        /// Writes the decision keys only when known; `max_bits_per_weight` as `null` for no cap.
        /// The v2 keys are written only when their feature is used, so that a file without v2
        /// features is byte-identical to a v1 one.
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(scheme, forKey: .scheme)
            try c.encode(bits, forKey: .bits)
            try c.encode(groupSize, forKey: .groupSize)
            try c.encode(axis, forKey: .axis)
            try c.encode(method, forKey: .method)
            try c.encodeIfPresent(zeroPoints, forKey: .zeroPoints)
            try c.encodeIfPresent(transform, forKey: .transform)
            if groupIndex == true { try c.encode(true, forKey: .groupIndex) }
            if codebook == true { try c.encode(true, forKey: .codebook) }
            try c.encodeIfPresent(scaleCodes, forKey: .scaleCodes)
            guard let scaleSearch else { return }
            try c.encode(scaleSearch, forKey: .scaleSearch)
            try c.encode(outlierKind, forKey: .outlierKind)
            try c.encode(outlierBudget, forKey: .outlierBudget)
            try c.encode(maxBitsPerWeight, forKey: .maxBitsPerWeight)
            try c.encode(importance, forKey: .importance)
            try c.encodeIfPresent(codebookKind, forKey: .codebookKind)
        }
    }

    /// §5.6: `{"kind": string, "block_size": integer}`, the kind a string so that an unknown
    /// one is rule 28, not a decoding failure.
    struct Transform: Codable {
        var kind: String
        var blockSize: Int

        enum CodingKeys: String, CodingKey {
            case kind
            case blockSize = "block_size"
        }
    }

    struct ErrorStats: Codable {
        var sqnrDB: Double
        var maxAbsError: Double

        enum CodingKeys: String, CodingKey {
            case sqnrDB = "sqnr_db"
            case maxAbsError = "max_abs_error"
        }
    }

    struct Outliers: Codable {
        var kind: String
        var count: Int
        var statistic: String
        var threshold: Double
    }

    struct Tensor: Codable {
        var name: String
        var dtype: String
        var shape: [Int]
        var encoding: String
        var blobs: [String: Blob]
        var quantization: Quantization?
        var error: ErrorStats?
        var outliers: Outliers?

        enum CodingKeys: String, CodingKey {
            case name, dtype, shape, encoding, blobs, quantization, error, outliers
        }

        /// Writes `error` and `outliers` as explicit `null` for affine tensors (§4.2).
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(name, forKey: .name)
            try container.encode(dtype, forKey: .dtype)
            try container.encode(shape, forKey: .shape)
            try container.encode(encoding, forKey: .encoding)
            try container.encode(blobs, forKey: .blobs)
            if let quantization {
                try container.encode(quantization, forKey: .quantization)
                try container.encode(error, forKey: .error)
                try container.encode(outliers, forKey: .outliers)
            }
        }
    }

    struct OutlierTotals: Codable {
        var parameters: Int
        var quantizedParameters: Int

        enum CodingKeys: String, CodingKey {
            case parameters
            case quantizedParameters = "quantized_parameters"
        }
    }

    var format: String
    var version: Int
    var tensors: [Tensor]
    var metadata: [String: String]
    var recipe: [String: QPKJSONValue]
    var outliers: OutlierTotals
    var provenance: QPKProvenance

    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return encoder
    }

    /// The first key that appears twice in one JSON object of `header` (rule 10a,
    /// `duplicate_key`), or `nil`. Foundation's decoder keeps the first of duplicate keys and
    /// Python's `json` the last, so a file with one would mean different things to different
    /// readers. Only duplicates are reported here; other syntax errors are left to the decoder.
    static func firstDuplicateKey(in header: UnsafeRawBufferPointer) -> String? {
        do {
            _ = try StrictJSONParser.parse(header)
            return nil
        } catch {
            let prefix = "duplicate key "
            guard error.message.hasPrefix(prefix) else { return nil }
            return String(error.message.dropFirst(prefix.count).dropFirst().dropLast())
        }
    }

    /// The `scale_codes` header object of `codes` (§4.3): `{"bits": K, "octaves": O}`.
    static func scaleCodesEntry(_ codes: ScaleCodes) -> QPKJSONValue {
        .object(["bits": .integer(Int64(codes.bits)), "octaves": .integer(Int64(codes.octaves))])
    }

    /// The scale coding a `scale_codes` header value describes, or why it is invalid (rule 31,
    /// §5.8): an object with integer `bits` in 2 … 8 and `octaves` in 1 … 32.
    static func scaleCodes(_ value: QPKJSONValue) -> Result<ScaleCodes, ScaleCodesProblem> {
        guard case let .object(members) = value else { return .failure(.init(reason: "scale_codes is not an object")) }
        func member(_ key: String, in range: ClosedRange<Int>) -> Result<Int, ScaleCodesProblem> {
            guard let entry = members[key] else { return .failure(.init(reason: "scale_codes lacks '\(key)'")) }
            guard case let .integer(number) = entry, range.contains(Int(clamping: number)) else {
                let shown = switch entry {
                case let .integer(number): String(number)
                case let .number(number): String(number)
                case let .string(text): "\"\(text)\""
                default: "of another JSON type"
                }
                return .failure(.init(reason: "scale_codes \(key) \(shown) is not an integer in \(range.lowerBound) … \(range.upperBound)"))
            }
            return .success(Int(number))
        }
        return member("bits", in: ScaleCodes.allowedBits).flatMap { bits in
            member("octaves", in: ScaleCodes.allowedOctaves).map { ScaleCodes(bits: bits, octaves: $0) }
        }
    }

    /// Why a `scale_codes` value breaks rule 31.
    struct ScaleCodesProblem: Error {
        var reason: String
    }

    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return decoder
    }
}

extension QPKHeaderDocument.Tensor {
    /// The header entry of a record.
    init(_ record: QPKTensorRecord) {
        name = record.info.name
        dtype = record.info.dtype.rawValue
        shape = record.info.shape
        encoding = record.encoding.rawValue
        blobs = Dictionary(uniqueKeysWithValues: record.blobs.map {
            ($0.key.rawValue, QPKHeaderDocument.Blob(offset: $0.value.offset, length: $0.value.length, crc32: $0.value.crc32))
        })
        if let layout = record.layout {
            let decision = record.decision
            quantization = .init(
                scheme: layout.scheme.rawValue, bits: layout.bits, groupSize: layout.groupSize,
                axis: layout.axis.rawValue, method: record.method ?? "",
                scaleSearch: decision?.scaleSearch.rawValue, outlierKind: decision?.outlierKind.rawValue,
                outlierBudget: decision?.outlierBudget, maxBitsPerWeight: decision?.maxBitsPerWeight,
                importance: decision?.importance.rawValue,
                codebookKind: layout.hasCodebook ? decision?.codebook?.rawValue : nil,
                zeroPoints: layout.zeroPoints == .float16 ? nil : layout.zeroPoints.rawValue,
                transform: layout.transform.map { .init(kind: $0.kind.rawValue, blockSize: $0.blockSize) },
                groupIndex: layout.hasGroupIndex ? true : nil, codebook: layout.hasCodebook ? true : nil,
                scaleCodes: layout.scaleCodes.map(QPKHeaderDocument.scaleCodesEntry))
            error = record.error.map { .init(sqnrDB: $0.sqnrDB, maxAbsError: $0.maxAbsError) }
            outliers = record.outliers.map {
                .init(kind: $0.kind.rawValue, count: $0.count, statistic: $0.statistic, threshold: $0.threshold)
            }
        }
    }
}

/// A decoding error as one line: the JSON path and what was wrong.
func describeDecodingError(_ error: any Error) -> String {
    func path(_ keys: [any CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
    }
    switch error as? DecodingError {
    case let .keyNotFound(key, context)?:
        return "missing key '\(key.stringValue)' at \(path(context.codingPath).isEmpty ? "top level" : path(context.codingPath))"
    case let .typeMismatch(_, context)?, let .valueNotFound(_, context)?:
        return "wrong type at \(path(context.codingPath)): \(context.debugDescription)"
    case let .dataCorrupted(context)?:
        return context.codingPath.isEmpty ? "not valid JSON" : "bad value at \(path(context.codingPath))"
    default:
        return "not valid JSON"
    }
}
