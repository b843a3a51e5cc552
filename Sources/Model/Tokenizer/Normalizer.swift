import Foundation

/// A tokenizer.json `normalizer`: rewrites the text before it is split into words.
///
/// The rules follow the Hugging Face `tokenizers` components of the same names; every rule works
/// on Unicode scalars (Rust `char`s), never on Swift's grapheme clusters.
enum Normalizer: Sendable {
    /// `BertNormalizer` (Devlin et al. 2019, the original BERT `BasicTokenizer`), in this order:
    /// 1. `clean_text`: drop U+0000, U+FFFD and control characters (categories Cc, Cf, Co, except
    ///    tab, newline and carriage return); turn every whitespace character (Unicode White_Space)
    ///    into a space.
    /// 2. `handle_chinese_chars`: put a space before and after each CJK ideograph (the CJK Unified
    ///    Ideographs blocks and their extensions A–E, and the compatibility ideographs).
    /// 3. `strip_accents` (default: the value of `lowercase`): NFD, then drop every nonspacing mark
    ///    (category Mn; spacing and enclosing marks stay).
    /// 4. `lowercase`: each scalar's full lowercase mapping, one scalar at a time (no final-sigma
    ///    context).
    case bert(cleanText: Bool, chineseChars: Bool, stripAccents: Bool, lowercase: Bool)
    case lowercase
    case stripAccents
    case nfd, nfc, nfkd, nfkc
    /// `Replace` with a literal `String` pattern.
    case replace(pattern: String, content: String)
    case prepend(String)
    case sequence([Normalizer])

    static let supported = ["BertNormalizer", "Lowercase", "StripAccents", "NFD", "NFC", "NFKD", "NFKC",
                            "Replace (String pattern)", "Prepend", "Sequence"]

    init(json: JSONObject) throws {
        let type = try json.string("type")
        switch type {
        case "BertNormalizer":
            let lowercase = try json.bool("lowercase", default: true)
            let strip = json.has("strip_accents") ? try json.bool("strip_accents", default: lowercase) : lowercase
            self = .bert(cleanText: try json.bool("clean_text", default: true),
                         chineseChars: try json.bool("handle_chinese_chars", default: true),
                         stripAccents: strip, lowercase: lowercase)
        case "Lowercase": self = .lowercase
        case "StripAccents": self = .stripAccents
        case "NFD": self = .nfd
        case "NFC": self = .nfc
        case "NFKD": self = .nfkd
        case "NFKC": self = .nfkc
        case "Prepend": self = .prepend(try json.string("prepend"))
        case "Replace":
            let pattern = try json.object("pattern")
            guard let literal = pattern.values["String"] as? String else {
                throw ModelError.unsupportedTokenizerComponent(
                    json.path, component: "normalizer", type: "Replace with a Regex pattern", supported: Self.supported)
            }
            self = .replace(pattern: literal, content: try json.string("content"))
        case "Sequence":
            self = .sequence(try json.objects("normalizers").map(Normalizer.init(json:)))
        default:
            throw ModelError.unsupportedTokenizerComponent(
                json.path, component: "normalizer", type: type, supported: Self.supported)
        }
    }

    func apply(_ text: String) -> String {
        switch self {
        case let .bert(cleanText, chineseChars, stripAccents, lowercase):
            var out = String.UnicodeScalarView()
            for scalar in text.unicodeScalars {
                if cleanText {
                    if scalar.value == 0 || scalar.value == 0xFFFD || UnicodeClass.isControl(scalar) { continue }
                    if scalar.properties.isWhitespace { out.append(" "); continue }
                }
                if chineseChars, UnicodeClass.isCJKIdeograph(scalar) {
                    out.append(" "); out.append(scalar); out.append(" ")
                } else {
                    out.append(scalar)
                }
            }
            var result = String(out)
            if stripAccents { result = Normalizer.stripAccents.apply(result) }
            if lowercase { result = Normalizer.lowercase.apply(result) }
            return result
        case .lowercase:
            var out = String.UnicodeScalarView()
            for scalar in text.unicodeScalars {
                out.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
            }
            return String(out)
        case .stripAccents:
            var out = String.UnicodeScalarView()
            for scalar in text.decomposedStringWithCanonicalMapping.unicodeScalars
            where scalar.properties.generalCategory != .nonspacingMark {
                out.append(scalar)
            }
            return String(out)
        case .nfd: return text.decomposedStringWithCanonicalMapping
        case .nfc: return text.precomposedStringWithCanonicalMapping
        case .nfkd: return text.decomposedStringWithCompatibilityMapping
        case .nfkc: return text.precomposedStringWithCompatibilityMapping
        case let .replace(pattern, content):
            return pattern.isEmpty ? text : text.replacingOccurrences(of: pattern, with: content, options: .literal)
        case let .prepend(prefix):
            return text.isEmpty ? text : prefix + text
        case let .sequence(steps):
            return steps.reduce(text) { $1.apply($0) }
        }
    }
}

/// The character classes of the BERT tokenizer rules.
enum UnicodeClass {
    /// A control character in BERT's sense: categories Cc, Cf and Co, except tab, newline and
    /// carriage return (which count as whitespace).
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09, 0x0A, 0x0D: return false
        default: break
        }
        switch scalar.properties.generalCategory {
        case .control, .format, .privateUse: return true
        default: return false
        }
    }

    /// BERT's punctuation: every ASCII character that is neither a letter, a digit, a space nor a
    /// control (so `$`, `+`, `^`, `` ` `` count), plus every Unicode P* character.
    static func isPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) {
            return true
        }
        switch scalar.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    /// The CJK ideograph blocks of the original BERT tokenizer.
    static func isCJKIdeograph(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F,
             0x2B740...0x2B81F, 0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }
}
