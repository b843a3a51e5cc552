import QPKCore
import Formats
import Quantize

/// Groups tensor names into layers by prefix.
///
/// Names are split into components at `.` and `/`. The layer of a name is everything up to and
/// including its last all-digit component other than the final one (`encoder.layer.3.attention.self.query.weight`
/// → `encoder.layer.3.`, `blocks/12/mlp/w1` → `blocks/12/`). A name without such a component
/// belongs to its first component (`embeddings.word_embeddings.weight` → `embeddings.`,
/// `dense_1/kernel:0` → `dense_1/`); a name of one component is its own layer.
public enum LayerGrouping {
    public static func prefix(of name: String) -> String {
        var components: [(text: Substring, end: String.Index)] = []
        var start = name.startIndex
        for index in name.indices where name[index] == "." || name[index] == "/" {
            components.append((name[start..<index], name.index(after: index)))
            start = name.index(after: index)
        }
        // `components` holds every component that is followed by a separator (never the last one).
        if let numbered = components.last(where: { !$0.text.isEmpty && $0.text.allSatisfy(\.isASCIIDigit) }) {
            return String(name[..<numbered.end])
        }
        if let first = components.first { return String(name[..<first.end]) }
        return name
    }
}

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
