import Foundation
import Testing
@testable import Model

/// The committed fixtures (fixtures/gen_tokenizers.py): three tokenizers trained with Hugging Face
/// `tokenizers` in the BERT, GPT-2 and llama-3 configurations, and the ids that library gives.
private let fixtures = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("fixtures/tokenizers")

private struct Expected: Decodable {
    let texts: [String]
    let ids: [String: [[Int32]]]
}

private func expected() throws -> Expected {
    try JSONDecoder().decode(Expected.self, from: Data(contentsOf: fixtures.appendingPathComponent("expected.json")))
}

@Suite struct TokenizerTests {
    @Test(arguments: ["wordpiece-bert", "bpe-gpt2", "bpe-llama3"])
    func idsEqualHuggingFaceTokenizers(name: String) throws {
        let reference = try expected()
        let tokenizer = try Tokenizer(contentsOf: fixtures.appendingPathComponent("\(name).json"))
        let wanted = try #require(reference.ids[name])
        for (text, ids) in zip(reference.texts, wanted) {
            #expect(tokenizer.encode(text) == ids, "\(name): \(text.debugDescription)")
        }
    }

    @Test func wordPieceSplitsPunctuationAndMarksContinuations() throws {
        let tokenizer = try Tokenizer(contentsOf: fixtures.appendingPathComponent("wordpiece-bert.json"))
        let ids = tokenizer.encode("Quantization!", addSpecialTokens: false)
        let vocabulary = try #require(tokenizer.model.wordPieceVocabulary)
        // "!" is its own word; the word before it is covered by a first piece and "##" pieces.
        #expect(ids.last == vocabulary["!"])
        #expect(ids.count >= 2)
    }

    @Test func truncationKeepsRoomForSpecialTokens() throws {
        let tokenizer = try Tokenizer(contentsOf: fixtures.appendingPathComponent("wordpiece-bert.json"))
        let ids = tokenizer.encode(String(repeating: "word ", count: 200))
        #expect(ids.count == 64)
        #expect(ids.first == tokenizer.encode("").first)
        #expect(ids.last == tokenizer.encode("").last)
        #expect(tokenizer.encode(String(repeating: "word ", count: 200), maxLength: 10).count == 10)
    }

    @Test func byteLevelAlphabetCoversEveryByteOnce() {
        let alphabet = ByteLevel.alphabet
        #expect(Set(alphabet).count == 256)
        #expect(alphabet[Int(UInt8(ascii: " "))] == "\u{120}")  // "Ġ"
        #expect(alphabet[Int(UInt8(ascii: "A"))] == "A")
    }

    @Test func unsupportedComponentIsNamed() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qpk-tok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("tokenizer.json")
        try Data(#"{"model":{"type":"Unigram","vocab":[]},"pre_tokenizer":null}"#.utf8).write(to: file)
        #expect(throws: ModelError.unsupportedTokenizerComponent(file.path, component: "model", type: "Unigram", supported: ["WordPiece", "BPE"])) {
            try Tokenizer(contentsOf: file)
        }
        try Data("not json".utf8).write(to: file)
        #expect(throws: ModelError.self) { try Tokenizer(contentsOf: file) }
    }
}

extension TokenModel {
    var wordPieceVocabulary: Vocabulary? {
        if case let .wordPiece(model) = self { return model.vocabulary }
        return nil
    }
}

@Suite struct OrdinaryTokenTests {
    @Test func bertOrdinaryTokensLeaveOutSpecialsAndPlaceholders() throws {
        let tokenizer = try Tokenizer(contentsOf: fixtures.appendingPathComponent("wordpiece-bert.json"))
        let ordinary = tokenizer.ordinaryTokenIDs()
        let vocabulary = try #require(tokenizer.model.wordPieceVocabulary)
        for special in ["[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]"] {
            let id = try #require(vocabulary[special])
            #expect(!ordinary.contains(id), "\(special) is not ordinary")
        }
        let word = try #require(tokenizer.encode("the", addSpecialTokens: false).first)
        #expect(ordinary.contains(word))
        #expect(ordinary == ordinary.sorted() && Set(ordinary).count == ordinary.count)
        #expect(ordinary.count == vocabulary.count - 5)
    }

    @Test(arguments: ["bpe-gpt2", "bpe-llama3"])
    func byteLevelOrdinaryTokensLeaveOutAddedTokens(name: String) throws {
        let tokenizer = try Tokenizer(contentsOf: fixtures.appendingPathComponent("\(name).json"))
        let ordinary = Set(tokenizer.ordinaryTokenIDs())
        #expect(!ordinary.isEmpty)
        for (_, id) in tokenizer.addedTokens { #expect(!ordinary.contains(id)) }
        for id in tokenizer.encode("Quantization keeps the model small.", addSpecialTokens: false) {
            #expect(ordinary.contains(id))
        }
    }

    @Test func specialTokensWrapLikeEncode() throws {
        let tokenizer = try Tokenizer(contentsOf: fixtures.appendingPathComponent("wordpiece-bert.json"))
        let inner = tokenizer.encode("a small model", addSpecialTokens: false)
        #expect(tokenizer.addingSpecialTokens(inner) == tokenizer.encode("a small model"))
        #expect(tokenizer.specialTokenCount == 2)
    }
}
