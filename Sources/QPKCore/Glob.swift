/// A shell-style pattern over tensor names: `*` matches any run of characters (dots included),
/// `?` one character, `[abc]`/`[a-z]`/`[!a]` one character of a set. Everything else is literal.
///
/// This is `fnmatch(3)` without `FNM_PATHNAME`, which is what users expect from
/// `--include 'encoder.*.weight'` style filters.
public struct Glob: Sendable, Hashable, CustomStringConvertible {
    public let pattern: String
    private let characters: [Character]

    public init(_ pattern: String) {
        self.pattern = pattern
        characters = Array(pattern)
    }

    public var description: String { pattern }

    /// Whether `name` matches the whole pattern.
    public func matches(_ name: String) -> Bool {
        let text = Array(name)
        var p = 0, t = 0
        var starP = -1, starT = 0
        while t < text.count {
            if p < characters.count {
                let c = characters[p]
                if c == "*" {
                    starP = p
                    starT = t
                    p += 1
                    continue
                }
                if c == "?" {
                    p += 1
                    t += 1
                    continue
                }
                if c == "[", let (matched, next) = matchClass(at: p, text[t]) {
                    if matched {
                        p = next
                        t += 1
                        continue
                    }
                } else if c == text[t] {
                    p += 1
                    t += 1
                    continue
                }
            }
            guard starP >= 0 else { return false }
            p = starP + 1
            starT += 1
            t = starT
        }
        while p < characters.count, characters[p] == "*" { p += 1 }
        return p == characters.count
    }

    /// Matches a `[...]` class starting at `start`; `nil` if the bracket is unterminated (then it is literal).
    private func matchClass(at start: Int, _ ch: Character) -> (Bool, Int)? {
        var i = start + 1
        var negated = false
        if i < characters.count, characters[i] == "!" || characters[i] == "^" {
            negated = true
            i += 1
        }
        var matched = false
        var first = true
        while i < characters.count {
            let c = characters[i]
            if c == "]" && !first { return (matched != negated, i + 1) }
            first = false
            if i + 2 < characters.count, characters[i + 1] == "-", characters[i + 2] != "]" {
                if c <= ch && ch <= characters[i + 2] { matched = true }
                i += 3
            } else {
                if c == ch { matched = true }
                i += 1
            }
        }
        return nil
    }
}
