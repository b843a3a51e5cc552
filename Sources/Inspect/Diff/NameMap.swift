import QPKCore
import Formats
import Quantize

/// Prefix renames that line up differently named checkpoints (`--map FROM:TO`).
///
/// Each rule rewrites a leading `FROM` into `TO`. Rules apply to the tensor names of **both**
/// checkpoints before they are matched; for each name only the first rule whose `FROM` is a
/// prefix applies. `model.:` strips `model.` wherever it leads; `encoder.:bert.encoder.` renames
/// a prefix. The rule is split at its first `:`, so `FROM` cannot contain a colon (`TO` can).
public struct NameMap: Sendable, Hashable, Codable {
    public struct Rule: Sendable, Hashable, Codable {
        public var from: String
        public var to: String

        public init(from: String, to: String) {
            self.from = from
            self.to = to
        }

        /// Parses `FROM:TO`.
        /// - Throws: ``DiffError/invalidMapRule(_:)`` when there is no colon or `FROM` is empty.
        public init(parsing text: String) throws {
            guard let colon = text.firstIndex(of: ":"), colon != text.startIndex else {
                throw DiffError.invalidMapRule(text)
            }
            from = String(text[..<colon])
            to = String(text[text.index(after: colon)...])
        }
    }

    public var rules: [Rule]

    public init(_ rules: [Rule] = []) { self.rules = rules }

    /// The name `name` is matched under.
    public func apply(to name: String) -> String {
        for rule in rules where name.hasPrefix(rule.from) {
            return rule.to + name.dropFirst(rule.from.count)
        }
        return name
    }
}

/// Errors that stop a diff before any tensor is compared.
public enum DiffError: Error, CustomStringConvertible, Sendable, Equatable {
    case invalidMapRule(String)
    /// Two tensors of one file map to the same name: (file, first, second, mapped name).
    case ambiguousMapping(String, String, String, String)

    public var description: String {
        switch self {
        case let .invalidMapRule(rule):
            "--map '\(rule)': not a FROM:TO rule; write e.g. 'model.:' to strip the prefix 'model.'"
        case let .ambiguousMapping(file, first, second, mapped):
            "\(file): tensors '\(first)' and '\(second)' both map to '\(mapped)'; make the --map rules more specific"
        }
    }
}
