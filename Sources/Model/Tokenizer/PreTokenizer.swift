import Foundation

/// A tokenizer.json `pre_tokenizer`: splits normalized text into the words the model encodes.
enum PreTokenizer: Sendable {
    /// `BertPreTokenizer`: split on whitespace (removed), then isolate every punctuation character
    /// (``UnicodeClass/isPunctuation(_:)``) as its own word.
    case bert
    /// `ByteLevel` (Radford et al. 2019, GPT-2): optionally prepend a space to each piece that
    /// does not start with one, optionally split with GPT-2's pattern (``ByteLevel/gpt2Pattern``),
    /// then spell each piece's UTF-8 bytes with ``ByteLevel/alphabet``.
    case byteLevel(addPrefixSpace: Bool, regex: NSRegularExpression?)
    /// `Split`: the pattern's matches become pieces of their own or are merged/removed according
    /// to `behavior`; `invert` swaps the roles of matches and the text between them.
    case split(regex: NSRegularExpression, behavior: SplitBehavior, invert: Bool)
    /// `Whitespace`: the runs of `\w+` and of `[^\w\s]+`; whitespace is dropped.
    case whitespace
    /// `WhitespaceSplit`: split on whitespace, which is dropped.
    case whitespaceSplit
    case sequence([PreTokenizer])

    static let supported = ["BertPreTokenizer", "ByteLevel", "Split", "Whitespace", "WhitespaceSplit", "Sequence"]

    /// What `Split` does with the pattern's matches.
    enum SplitBehavior: String, Sendable {
        case removed = "Removed", isolated = "Isolated", mergedWithPrevious = "MergedWithPrevious"
        case mergedWithNext = "MergedWithNext", contiguous = "Contiguous"
    }

    private static let whitespaceRegex = try! NSRegularExpression(pattern: #"\w+|[^\w\s]+"#)
    private static let whitespaceRunRegex = try! NSRegularExpression(pattern: #"\s+"#)

    init(json: JSONObject) throws {
        let type = try json.string("type")
        switch type {
        case "BertPreTokenizer": self = .bert
        case "Whitespace": self = .whitespace
        case "WhitespaceSplit": self = .whitespaceSplit
        case "ByteLevel":
            let regex = try json.bool("use_regex", default: true) ? ByteLevel.gpt2Regex : nil
            self = .byteLevel(addPrefixSpace: try json.bool("add_prefix_space", default: true), regex: regex)
        case "Split":
            let pattern = try json.object("pattern")
            let source: String
            if let regex = pattern.values["Regex"] as? String {
                source = regex
            } else if let literal = pattern.values["String"] as? String {
                source = NSRegularExpression.escapedPattern(for: literal)
            } else {
                throw ModelError.invalidField(json.path, key: "pre_tokenizer.pattern", rule: "must hold \"Regex\" or \"String\"")
            }
            let regex: NSRegularExpression
            do {
                regex = try NSRegularExpression(pattern: source)
            } catch {
                throw ModelError.invalidField(json.path, key: "pre_tokenizer.pattern", rule: "is not a regular expression qpk can compile: \(source)")
            }
            let name = try json.string("behavior")
            guard let behavior = SplitBehavior(rawValue: name) else {
                throw ModelError.invalidField(json.path, key: "pre_tokenizer.behavior",
                                              rule: "must be Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous, not \(name)")
            }
            self = .split(regex: regex, behavior: behavior, invert: try json.bool("invert", default: false))
        case "Sequence":
            self = .sequence(try json.objects("pretokenizers").map(PreTokenizer.init(json:)))
        default:
            throw ModelError.unsupportedTokenizerComponent(
                json.path, component: "pre_tokenizer", type: type, supported: Self.supported)
        }
    }

    /// Splits every piece further.
    func apply(_ pieces: [String]) -> [String] {
        switch self {
        case .bert:
            return pieces.flatMap { piece in
                Self.splitScalars(piece) { $0.properties.isWhitespace ? .drop : UnicodeClass.isPunctuation($0) ? .isolate : .keep }
            }
        case .whitespaceSplit:
            return pieces.flatMap { Self.split($0, regex: Self.whitespaceRunRegex, behavior: .removed, invert: false) }
        case .whitespace:
            return pieces.flatMap { Self.split($0, regex: Self.whitespaceRegex, behavior: .removed, invert: true) }
        case let .byteLevel(addPrefixSpace, regex):
            return pieces.flatMap { piece -> [String] in
                var text = piece
                if addPrefixSpace, !text.hasPrefix(" ") { text = " " + text }
                let words = regex.map { Self.split(text, regex: $0, behavior: .isolated, invert: false) } ?? [text]
                return words.map(ByteLevel.spell)
            }
        case let .split(regex, behavior, invert):
            return pieces.flatMap { Self.split($0, regex: regex, behavior: behavior, invert: invert) }
        case let .sequence(steps):
            return steps.reduce(pieces) { $1.apply($0) }
        }
    }

    private enum ScalarRole { case keep, drop, isolate }

    private static func splitScalars(_ text: String, role: (Unicode.Scalar) -> ScalarRole) -> [String] {
        var words: [String] = []
        var current = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            switch role(scalar) {
            case .keep:
                current.append(scalar)
            case .drop, .isolate:
                if !current.isEmpty { words.append(String(current)); current = String.UnicodeScalarView() }
                if role(scalar) == .isolate { words.append(String(String.UnicodeScalarView([scalar]))) }
            }
        }
        if !current.isEmpty { words.append(String(current)) }
        return words
    }

    /// The `tokenizers` split rule: the matches of `regex` and the gaps between them, handled
    /// according to `behavior` (with `invert`, the gaps are the delimiters). Empty pieces vanish.
    static func split(_ text: String, regex: NSRegularExpression, behavior: SplitBehavior, invert: Bool) -> [String] {
        let ns = text as NSString
        var segments: [(text: String, isDelimiter: Bool)] = []
        var last = 0
        for match in regex.matches(in: text, range: NSRange(location: 0, length: ns.length)) where match.range.length > 0 {
            if match.range.location > last {
                segments.append((ns.substring(with: NSRange(location: last, length: match.range.location - last)), invert))
            }
            segments.append((ns.substring(with: match.range), !invert))
            last = match.range.location + match.range.length
        }
        if last < ns.length { segments.append((ns.substring(from: last), invert)) }

        var out: [String] = []
        switch behavior {
        case .removed:
            out = segments.filter { !$0.isDelimiter }.map(\.text)
        case .isolated:
            out = segments.map(\.text)
        case .mergedWithPrevious:
            for segment in segments {
                if segment.isDelimiter, !out.isEmpty { out[out.count - 1] += segment.text } else { out.append(segment.text) }
            }
        case .mergedWithNext:
            var pending = ""
            for segment in segments {
                if segment.isDelimiter { pending += segment.text } else { out.append(pending + segment.text); pending = "" }
            }
            if !pending.isEmpty { out.append(pending) }
        case .contiguous:
            var previousWasDelimiter = false
            for segment in segments {
                if segment.isDelimiter, previousWasDelimiter, !out.isEmpty { out[out.count - 1] += segment.text } else { out.append(segment.text) }
                previousWasDelimiter = segment.isDelimiter
            }
        }
        return out.filter { !$0.isEmpty }
    }
}

/// GPT-2's byte-level alphabet (Radford et al. 2019): every byte is spelled as one printable
/// Unicode character, so that a BPE vocabulary over these characters covers any UTF-8 text
/// without an unknown token.
enum ByteLevel {
    /// GPT-2's split pattern: contractions, letter runs, number runs and other-symbol runs, each
    /// with an optional leading space, then whitespace runs (keeping the last space for the
    /// following word).
    static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let gpt2Regex = try! NSRegularExpression(pattern: gpt2Pattern)

    /// Byte → character: the printable bytes `!`…`~`, `¡`…`¬` and `®`…`ÿ` stand for themselves;
    /// the other 68 bytes, in increasing order, take U+0100, U+0101, … .
    static let alphabet: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            let printable = (33...126).contains(byte) || (161...172).contains(byte) || (174...255).contains(byte)
            if printable {
                table[byte] = Unicode.Scalar(UInt32(byte))!
            } else {
                table[byte] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// The piece's UTF-8 bytes spelled in ``alphabet``.
    static func spell(_ piece: String) -> String {
        var out = String.UnicodeScalarView()
        for byte in piece.utf8 { out.append(alphabet[Int(byte)]) }
        return String(out)
    }
}
