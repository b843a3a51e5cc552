import QPKCore
import Formats
import Quantize

/// ANSI colouring that is a no-op unless enabled. The CLI enables it when stdout is a terminal
/// and `NO_COLOR` is unset (https://no-color.org); the library never decides on its own.
public struct Colors: Sendable {
    public var isEnabled: Bool

    public init(enabled: Bool) { isEnabled = enabled }

    /// The conventional decision: `isTerminal` and no `NO_COLOR` (any value) in `environment`.
    public static func automatic(isTerminal: Bool, environment: [String: String]) -> Colors {
        Colors(enabled: isTerminal && environment["NO_COLOR"] == nil)
    }

    public func bold(_ text: String) -> String { wrap(text, "1") }
    public func dim(_ text: String) -> String { wrap(text, "2") }
    public func red(_ text: String) -> String { wrap(text, "31") }
    public func green(_ text: String) -> String { wrap(text, "32") }
    public func yellow(_ text: String) -> String { wrap(text, "33") }
    public func cyan(_ text: String) -> String { wrap(text, "36") }

    private func wrap(_ text: String, _ code: String) -> String {
        isEnabled && !text.isEmpty ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }

    /// The number of characters `text` shows on screen (ANSI escape sequences excluded).
    static func visibleWidth(_ text: String) -> Int {
        var width = 0
        var inEscape = false
        for scalar in text.unicodeScalars {
            if inEscape {
                if scalar == "m" { inEscape = false }
            } else if scalar == "\u{1B}" {
                inEscape = true
            } else {
                width += 1
            }
        }
        return width
    }
}
