import Foundation
import QPKCore
import Formats
import Quantize

/// The result of `qpk validate` over any number of files, filled by the CLI from each format's
/// validator. Exit status: 0 when every file is valid, 1 otherwise (the CLI uses 2 when it could
/// not run at all).
public struct ValidationReport: Sendable, Codable, Equatable {
    /// One broken rule.
    public struct Problem: Sendable, Codable, Equatable {
        /// The tensor concerned, if the rule is about one tensor.
        public var tensor: String?
        /// The rule's stable identifier (e.g. `header_too_large`, `crc_mismatch`).
        public var rule: String
        /// What is wrong, in one line.
        public var message: String
        /// What the user can do (e.g. "looks like a git-lfs pointer: run git lfs pull").
        public var hint: String?

        public init(tensor: String? = nil, rule: String, message: String, hint: String? = nil) {
            self.tensor = tensor
            self.rule = rule
            self.message = message
            self.hint = hint
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(tensor, forKey: .tensor)
            try c.encode(rule, forKey: .rule)
            try c.encode(message, forKey: .message)
            try c.encode(hint, forKey: .hint)
        }
    }

    /// One file's verdict.
    public struct FileResult: Sendable, Codable, Equatable {
        public var file: String
        /// `safetensors`, `hdf5`, `qpk`, or `nil` when the format could not be recognised.
        public var format: String?
        /// Tensors checked (`nil` when the file could not be parsed far enough to count them).
        public var tensors: Int?
        public var problems: [Problem]

        /// Valid means no problem at all.
        public var valid: Bool { problems.isEmpty }

        public init(file: String, format: String?, tensors: Int? = nil, problems: [Problem] = []) {
            self.file = file
            self.format = format
            self.tensors = tensors
            self.problems = problems
        }

        enum CodingKeys: String, CodingKey { case file, format, tensors, valid, problems }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            file = try c.decode(String.self, forKey: .file)
            format = try c.decodeIfPresent(String.self, forKey: .format)
            tensors = try c.decodeIfPresent(Int.self, forKey: .tensors)
            problems = try c.decode([Problem].self, forKey: .problems)
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(file, forKey: .file)
            try c.encode(format, forKey: .format)
            try c.encode(tensors, forKey: .tensors)
            try c.encode(valid, forKey: .valid)
            try c.encode(problems, forKey: .problems)
        }
    }

    public var files: [FileResult]

    public init(files: [FileResult] = []) { self.files = files }

    public mutating func append(_ result: FileResult) { files.append(result) }

    /// Whether every file is valid.
    public var allValid: Bool { files.allSatisfy(\.valid) }

    /// 0 when every file is valid, 1 otherwise.
    public var exitStatus: Int32 { allValid ? 0 : 1 }

    enum CodingKeys: String, CodingKey { case files, valid, summary }

    struct Summary: Codable {
        var files: Int
        var valid: Int
        var invalid: Int
        var problems: Int
    }

    public init(from decoder: any Decoder) throws {
        files = try decoder.container(keyedBy: CodingKeys.self).decode([FileResult].self, forKey: .files)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(files, forKey: .files)
        try c.encode(allValid, forKey: .valid)
        let valid = files.count(where: \.valid)
        try c.encode(Summary(files: files.count, valid: valid, invalid: files.count - valid,
                             problems: files.reduce(0) { $0 + $1.problems.count }), forKey: .summary)
    }

    /// One line per problem, `FILE: tensor 'X': RULE: message (hint)`, and `FILE: OK (format, N tensors)`
    /// for each valid file.
    public func renderText(colors: Colors = Colors(enabled: false)) -> String {
        var lines: [String] = []
        for file in files {
            if file.valid {
                var detail = file.format ?? "unknown format"
                if let n = file.tensors { detail += ", \(n) tensor\(n == 1 ? "" : "s")" }
                lines.append("\(file.file): \(colors.green("OK")) (\(detail))")
                continue
            }
            for problem in file.problems {
                var line = "\(file.file): "
                if let tensor = problem.tensor { line += "tensor '\(tensor)': " }
                line += colors.red(problem.rule) + ": " + problem.message
                if let hint = problem.hint { line += colors.dim(" (\(hint))") }
                lines.append(line)
            }
        }
        return lines.joined(separator: "\n")
    }

    /// The report as JSON (``ReportJSON`` conventions).
    public func jsonData() throws -> Data { try ReportJSON.data(self) }
}
