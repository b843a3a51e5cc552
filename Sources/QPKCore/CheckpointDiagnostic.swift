/// One problem with a checkpoint, as data: the error vocabulary every format shares.
///
/// Each format's error enum (safetensors, sharded safetensors, QPK, GGUF, HDF5, runtime layouts,
/// file access) describes itself as a diagnostic — which file, which tensor, which rule, what is
/// wrong and what to do — and its message is rendered from these fields in one place
/// (``description``), so `qpk validate`, its JSON and every command's one-line error read the
/// fields, never the text.
///
/// Rule names are snake_case, stable, and unique within a format (spec/cli.md lists them per
/// format); safetensors rules keep the reference implementation's variant names as
/// ``SafetensorsError/referenceName``.
public struct CheckpointDiagnostic: Sendable, Equatable, CustomStringConvertible {
    /// The file (or folder, or index) the problem is in, as it was opened.
    public var file: String
    /// The tensor concerned, `nil` for a file-level rule.
    public var tensor: String?
    /// The broken rule, snake_case (`header_too_large`, `blob_checksum`, `cannot_open`).
    public var rule: String
    /// What is wrong, without the file, tensor and rule.
    public var detail: String
    /// What to do about it, when there is something to say.
    public var hint: String?
    /// The operating system's error number, for file-access problems.
    public var errno: Int32?

    public init(
        file: String, tensor: String? = nil, rule: String, detail: String, hint: String? = nil, errno: Int32? = nil
    ) {
        self.file = file
        self.tensor = tensor
        self.rule = rule
        self.detail = detail
        self.hint = hint
        self.errno = errno
    }

    /// One line: `FILE: tensor 'NAME': RULE: DETAIL; HINT`.
    public var description: String {
        var text = file + ": "
        if let tensor { text += "tensor '\(tensor)': " }
        text += rule + ": " + detail
        if let hint { text += "; " + hint }
        return text
    }

    /// `name` (`HeaderTooLarge`, `EmptyWeightMap`) in snake_case (`header_too_large`).
    public static func snakeCase(_ name: String) -> String {
        var result = ""
        for (index, character) in name.enumerated() {
            if character.isUppercase {
                if index > 0 { result += "_" }
                result += character.lowercased()
            } else {
                result.append(character)
            }
        }
        return result
    }
}

/// An error that is a ``CheckpointDiagnostic``; its description is the diagnostic's line.
public protocol CheckpointDiagnosable: Error, CustomStringConvertible {
    var diagnostic: CheckpointDiagnostic { get }
}

extension CheckpointDiagnosable {
    public var description: String { diagnostic.description }
}
