import QPKCore
/// A request that cannot be carried out as asked, although every input is fine: a pattern that
/// matches nothing, an option that does not apply to the output, a lossy cast without consent, an
/// invalid number. Saying no beats silently doing nothing; the CLI exits 2 (spec/cli.md).
public struct UsageError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The broken rule.
    public enum Rule: String, Sendable {
        /// A `--tensor`, `--include` or `--exclude` pattern that selects no tensor.
        case globMatchesNothing = "glob_matches_nothing"
        /// An option that has no effect on this input and output.
        case notApplicable = "option_not_applicable"
        /// A float → integer (or bool) cast without `--allow-lossy-cast`.
        case lossyCast = "lossy_cast"
        /// A number outside the option's range (negative, NaN, zero where one is needed).
        case invalidNumber = "invalid_number"
        /// An output path whose format or layout cannot be told or contradicts the options.
        case outputLayout = "output_layout"
    }

    public var rule: Rule
    /// One line: what is wrong and what to do instead.
    public var message: String

    public init(_ rule: Rule, _ message: String) {
        self.rule = rule
        self.message = message
    }

    public var description: String { message }

    /// Throws ``Rule/globMatchesNothing`` for the first pattern of `patterns` that matches none
    /// of `names` (`option` is the flag, e.g. `--tensor`; `source` names the checkpoint).
    public static func requireMatches(
        _ patterns: [Glob], in names: [String], option: String, source: String
    ) throws {
        var unmatched = patterns
        for name in names where !unmatched.isEmpty {
            unmatched.removeAll { $0.matches(name) }
        }
        if let pattern = unmatched.first {
            throw UsageError(.globMatchesNothing, "\(option) '\(pattern)' matches no tensor of \(source) (\(names.count) tensors); check the pattern (* matches any run of characters, dots included) or list the names with 'qpk inspect'")
        }
    }

    /// Throws ``Rule/invalidNumber`` unless `value` is finite and at least `minimum`.
    public static func requireNumber(_ value: Double, atLeast minimum: Double, option: String) throws {
        guard value.isFinite, value >= minimum else {
            let bound = minimum == minimum.rounded() ? String(Int(minimum)) : String(minimum)
            throw UsageError(.invalidNumber, "\(option) \(value): must be a finite number ≥ \(bound)")
        }
    }

    /// Throws ``Rule/invalidNumber`` unless `value` is at least `minimum`.
    public static func requireCount(_ value: Int, atLeast minimum: Int, option: String) throws {
        guard value >= minimum else {
            throw UsageError(.invalidNumber, "\(option) \(value): must be at least \(minimum)")
        }
    }
}
