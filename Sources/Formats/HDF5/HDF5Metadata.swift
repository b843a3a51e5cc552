import Foundation
import QPKCore

/// The reversible mapping between HDF5 attributes/groups and flat `[String: String]` checkpoint
/// metadata (the form that travels in safetensors `__metadata__`). See spec/hdf5-mapping.md.
///
/// - Every scalar, variable-length, UTF-8, NUL-terminated string attribute of the **root group**
///   (what h5py writes for a Python `str`) becomes a plain key: attribute name → its value.
///   Conversely every metadata key that is not one of the reserved keys below becomes such an
///   attribute on the root group. So safetensors `__metadata__` → HDF5 → safetensors is exact.
/// - ``attributesKey`` (`hdf5.attributes`): every other attribute of every group and dataset, as a
///   JSON object `{"<object path>": {"<attribute name>": <HDF5Attribute JSON>}}` with paths
///   starting at `/`, keys sorted.
/// - ``groupsKey`` (`hdf5.groups`): a JSON array of the groups that contain no tensor anywhere
///   below them (empty Keras layer groups such as `model_weights/activation_1`), so they are
///   recreated even though no tensor name implies them.
public enum HDF5Metadata {
    public static let attributesKey = "hdf5.attributes"
    public static let groupsKey = "hdf5.groups"
    public static let reservedKeys: Set<String> = [attributesKey, groupsKey]

    /// Flattens attributes and groups into metadata.
    static func encode(
        attributes: [String: [String: HDF5Attribute]], groups: [String], tensorNames: [String]
    ) throws -> [String: String] {
        var metadata: [String: String] = [:]
        var rest = attributes
        if let root = attributes["/"] {
            for (name, attribute) in root where attribute.isPlainString && !reservedKeys.contains(name) {
                metadata[name] = attribute.strings.first ?? ""
                rest["/"]?[name] = nil
            }
            if rest["/"]?.isEmpty == true { rest["/"] = nil }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        if !rest.isEmpty {
            metadata[attributesKey] = String(decoding: try encoder.encode(rest), as: UTF8.self)
        }
        var occupied = Set<String>()
        for name in tensorNames {
            var path = ""
            for part in name.split(separator: "/").dropLast() {
                path += "/" + part
                occupied.insert(path)
            }
        }
        let empty = groups.filter { !occupied.contains($0) }.sorted(by: KerasLayout.byteOrder)
        if !empty.isEmpty {
            metadata[groupsKey] = String(decoding: try encoder.encode(empty), as: UTF8.self)
        }
        return metadata
    }

    /// Parses `metadata` back into plain root attributes, typed attributes, and extra groups.
    static func decode(
        _ metadata: [String: String], file: String
    ) throws -> (attributes: [String: [String: HDF5Attribute]], groups: [String]) {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        var attributes: [String: [String: HDF5Attribute]] = [:]
        if let text = metadata[attributesKey] {
            do {
                attributes = try decoder.decode([String: [String: HDF5Attribute]].self, from: Data(text.utf8))
            } catch {
                throw HDF5Error.invalidMetadata(file: file, key: attributesKey, reason: "not valid attribute JSON (\(error))".oneLine)
            }
        }
        for (key, value) in metadata where !reservedKeys.contains(key) {
            if attributes["/"]?[key] == nil { attributes["/", default: [:]][key] = .string(value) }
        }
        var groups: [String] = []
        if let text = metadata[groupsKey] {
            do { groups = try decoder.decode([String].self, from: Data(text.utf8)) } catch {
                throw HDF5Error.invalidMetadata(file: file, key: groupsKey, reason: "not a JSON array of group paths")
            }
        }
        return (attributes, groups)
    }
}

extension String {
    /// The text with line breaks folded into spaces (error descriptions are one line).
    var oneLine: String { split(whereSeparator: \.isNewline).joined(separator: " ") }
}
