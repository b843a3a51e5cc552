import Foundation
import Formats
import QPKCore

/// What is wrong with a file of tuned outlier values (`qpk convert IN.qpk OUT.qpk --outlier-values FILE`).
///
/// Every ``description`` is one line naming the values file, the tensor and the broken rule.
public enum OutlierValueError: CheckpointDiagnosable, Equatable, Sendable {
    /// The output is not a `.qpk` file.
    case outputNotQPK(path: String)
    /// The QPK file has outliers in `tensor`, the values file has no tensor of that name.
    case missingTensor(path: String, tensor: String, qpk: String)
    /// The values file has a tensor that is not a quantized tensor with outliers in the QPK file.
    case unexpectedTensor(path: String, tensor: String, qpk: String, reason: String)
    /// A values tensor is not F32.
    case wrongDType(path: String, tensor: String, found: String)
    /// A values tensor is not 1-D with exactly as many values as the outlier record covers.
    case wrongLength(path: String, tensor: String, expected: Int, found: [Int])
    /// A values tensor holds NaN or an infinity.
    case nonFinite(path: String, tensor: String, index: Int)

    /// The rule's name.
    public var rule: String {
        switch self {
        case .outputNotQPK: "output_not_qpk"
        case .missingTensor: "missing_tensor"
        case .unexpectedTensor: "unexpected_tensor"
        case .wrongDType: "dtype"
        case .wrongLength: "length"
        case .nonFinite: "non_finite"
        }
    }

    /// The problem as data, about the values file (or the output path for ``outputNotQPK``).
    public var diagnostic: CheckpointDiagnostic {
        switch self {
        case let .outputNotQPK(path):
            CheckpointDiagnostic(file: path, rule: rule, detail: "--outlier-values writes a QPK file", hint: "give the output a .qpk extension")
        case let .missingTensor(path, tensor, qpk):
            CheckpointDiagnostic(
                file: path, tensor: tensor, rule: rule,
                detail: "\(qpk) has outliers in this tensor but the values file has no tensor of that name",
                hint: "save every outlier tensor")
        case let .unexpectedTensor(path, tensor, qpk, reason):
            CheckpointDiagnostic(
                file: path, tensor: tensor, rule: rule, detail: "\(reason) in \(qpk)",
                hint: "the values file holds only tensors with outliers")
        case let .wrongDType(path, tensor, found):
            CheckpointDiagnostic(
                file: path, tensor: tensor, rule: rule, detail: "\(found), outlier values are stored as F32",
                hint: "save them as float32")
        case let .wrongLength(path, tensor, expected, found):
            CheckpointDiagnostic(
                file: path, tensor: tensor, rule: rule,
                detail: "shape \(found), the outlier record covers \(expected) parameters",
                hint: "expected shape [\(expected)] in spec §6 order")
        case let .nonFinite(path, tensor, index):
            CheckpointDiagnostic(
                file: path, tensor: tensor, rule: rule, detail: "value \(index) is NaN or infinite", hint: "the tuning diverged")
        }
    }
}

/// Writes a copy of a QPK file whose outlier values are replaced by tuned ones: the PreQuant
/// workflow (Gong et al., 2023) quantizes once, task-agnostically, then fine-tunes only the
/// outlier parameters per task; this puts the fine-tuned values back.
///
/// The values file is safetensors with one 1-D F32 tensor per quantized tensor that has an outlier
/// record, named as in the QPK file, holding its `P` outlier values in the order of
/// `spec/qpk-format.md` §6 (exactly what `outlier_values` blobs hold). Nothing else changes:
/// codes, scales, zero-points and outlier indices are copied byte for byte, raw tensors too; the
/// blob CRCs of the new values and the header are recomputed by ``QPKWriter``. Each tensor's
/// recorded `error` (§4.4) is kept as it was: it measures the quantization against the source
/// checkpoint, which is not at hand here, and the tuned values depart from the source on purpose.
/// The provenance keeps the original sources and records the values file as
/// `tuned_outliers_from` (§4.7).
public enum OutlierValueReplacement {
    /// What a replacement did.
    public struct Summary: Sendable, Codable, Equatable {
        public var input: String
        public var output: String
        public var valuesFile: String
        /// Tensors whose outlier values were replaced.
        public var tensors: Int
        /// Outlier values written, and how many of them differ from the ones they replaced.
        public var values: Int
        public var changed: Int
        /// The largest |new − old| over all replaced values (0 when none changed).
        public var maxAbsChange: Double

        enum CodingKeys: String, CodingKey {
            case input, output, tensors, values, changed
            case valuesFile = "values_file"
            case maxAbsChange = "max_abs_change"
        }
    }

    /// Copies `input` to `output`, replacing the outlier values by those in `values`.
    /// - Parameters:
    ///   - createdBy: the command line, appended to the provenance's `created_by`.
    /// - Throws: ``OutlierValueError`` for a values file that does not match `input`;
    ///   ``QPKError``, ``SafetensorsError`` or ``FileAccessError`` for unreadable or corrupt inputs
    ///   (nothing is written then); I/O errors from the output.
    public static func replace(
        input: URL, output: URL, values: URL, overwrite: Bool, createdBy: String
    ) throws -> Summary {
        guard output.pathExtension.lowercased() == "qpk" else { throw OutlierValueError.outputNotQPK(path: output.path) }
        let reader = try QPKReader(url: input)
        let tuned = try SafetensorsReader(url: values)
        let replacements = try checkedValues(tuned, against: reader)

        var summary = Summary(
            input: input.path, output: output.path, valuesFile: values.path, tensors: replacements.count,
            values: 0, changed: 0, maxAbsChange: 0)
        // First pass, outlier tensors only: what changes (the provenance records it). The second
        // pass streams every tensor to the writer, one at a time.
        for info in reader.tensors {
            guard let new = replacements[info.name], case let .quantized(tensor) = try reader.storage(of: info),
                  let outliers = tensor.outliers else { continue }
            for (old, value) in zip(outliers.values, new) where old.bitPattern != value.bitPattern {
                summary.changed += 1
                summary.maxAbsChange = max(summary.maxAbsChange, Double(abs(value - old)))
            }
            summary.values += new.count
        }

        let file = try MappedFile(url: values)
        var provenance = reader.provenance
        provenance.qpkVersion = QPKProvenance.currentQPKVersion
        provenance.createdBy = provenance.createdBy.isEmpty ? createdBy : "\(provenance.createdBy); tuned: \(createdBy)"
        provenance.tunedOutliersFrom = .init(
            name: values.lastPathComponent, size: file.bytes.count, sha256: SHA256Hex.digest(of: file.bytes),
            values: summary.values, changed: summary.changed)
        let writer = try QPKWriter(
            url: output, tensors: reader.tensors, metadata: reader.metadata, recipe: reader.recipe,
            provenance: provenance, overwrite: overwrite)
        for info in reader.tensors {
            var storage = try reader.storage(of: info)
            if case var .quantized(tensor) = storage, tensor.outliers != nil, let new = replacements[info.name] {
                tensor.outliers?.values = new
                storage = .quantized(tensor)
            }
            try writer.write(info, storage: storage)
        }
        try writer.finish()
        return summary
    }

    /// Checks the values file against the QPK file's outlier records and decodes its values.
    static func checkedValues(_ tuned: SafetensorsReader, against reader: QPKReader) throws -> [String: [Float]] {
        let path = tuned.url.path, qpk = reader.url.lastPathComponent
        var result: [String: [Float]] = [:]
        for info in tuned.tensors {
            guard let record = reader.record(for: info.name) else {
                throw OutlierValueError.unexpectedTensor(path: path, tensor: info.name, qpk: qpk, reason: "no tensor of that name")
            }
            guard record.encoding == .affine, record.outliers != nil else {
                let reason = record.encoding == .affine ? "the tensor has no outlier record" : "the tensor is stored raw (not quantized)"
                throw OutlierValueError.unexpectedTensor(path: path, tensor: info.name, qpk: qpk, reason: reason)
            }
            guard info.dtype == .f32 else {
                throw OutlierValueError.wrongDType(path: path, tensor: info.name, found: info.dtype.rawValue)
            }
            let expected = record.outlierParameterCount
            guard info.shape == [expected] else {
                throw OutlierValueError.wrongLength(path: path, tensor: info.name, expected: expected, found: info.shape)
            }
            guard case let .dense(bytes) = try tuned.storage(of: info) else { continue }
            let values = bytes.withUnsafeBytes { raw in
                (0..<expected).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
            }
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                throw OutlierValueError.nonFinite(path: path, tensor: info.name, index: bad)
            }
            result[info.name] = values
        }
        for record in reader.records where record.encoding == .affine && record.outliers != nil && result[record.info.name] == nil {
            throw OutlierValueError.missingTensor(path: path, tensor: record.info.name, qpk: qpk)
        }
        return result
    }
}
