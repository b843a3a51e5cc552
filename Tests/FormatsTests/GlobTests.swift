import Testing
@testable import Formats
import QPKCore

@Suite("Glob: fnmatch-style tensor name patterns")
struct GlobTests {
    @Test("`*` matches any run, dots included", arguments: [
        ("encoder.layer.0.*", "encoder.layer.0.attention.self.query.weight", true),
        ("encoder.layer.0.*", "encoder.layer.0.", true),
        ("encoder.layer.0.*", "encoder.layer.10.output.dense.bias", false),
        ("*.weight", "embeddings.word_embeddings.weight", true),
        ("*.weight", "pooler.dense.bias", false),
        ("*.weight", ".weight", true),
        ("*", "", true),
        ("*attention*", "encoder.layer.3.attention.output.dense.weight", true),
        ("encoder.*.weight", "encoder.layer.5.intermediate.dense.weight", true),
        ("a*b*c", "aXXbYYbZZc", true),
        ("a*b*c", "aXXbYYbZZ", false),
    ])
    func star(pattern: String, name: String, matches: Bool) {
        #expect(Glob(pattern).matches(name) == matches)
    }

    @Test("`?` matches exactly one character")
    func question() {
        #expect(Glob("layer.?.weight").matches("layer.3.weight"))
        #expect(!Glob("layer.?.weight").matches("layer.12.weight"))
        #expect(!Glob("layer.?.weight").matches("layer..weight"))
        #expect(Glob("layer.??.weight").matches("layer.12.weight"))
        #expect(Glob("?").matches("é"))
    }

    @Test("character classes: sets, ranges, negation, and a literal `]` first")
    func classes() {
        #expect(Glob("layer.[0-2].weight").matches("layer.1.weight"))
        #expect(!Glob("layer.[0-2].weight").matches("layer.3.weight"))
        #expect(Glob("layer.[!0-2].weight").matches("layer.3.weight"))
        #expect(Glob("layer.[^0-2].weight").matches("layer.7.weight"))
        #expect(!Glob("layer.[!0-2].weight").matches("layer.0.weight"))
        #expect(Glob("[qkv]_proj").matches("k_proj"))
        #expect(!Glob("[qkv]_proj").matches("o_proj"))
        #expect(Glob("[]]").matches("]"))
        #expect(Glob("x[a-c-]").matches("x-"))
    }

    @Test("everything else is literal, the whole name must match, unterminated `[` is literal")
    func literals() {
        #expect(Glob("pooler.dense.bias").matches("pooler.dense.bias"))
        #expect(!Glob("pooler.dense").matches("pooler.dense.bias"))
        #expect(!Glob("dense.bias").matches("pooler.dense.bias"))
        #expect(Glob("a[b").matches("a[b"))
        #expect(!Glob("a[b").matches("ab"))
        #expect(Glob("").matches(""))
        #expect(!Glob("").matches("a"))
        #expect(Glob("encoder.*").description == "encoder.*")
    }
}
