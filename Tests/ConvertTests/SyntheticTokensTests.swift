import Foundation
import Testing

@testable import Convert
import Model
import QPKCore

/// `--random-tokens` (spec/quantization.md §13): the sequences are fixed by the spec.
@Suite("Random-token calibration sequences")
struct SyntheticTokensTests {
    static let tokenizer: Tokenizer = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return try! Tokenizer(contentsOf: root.appendingPathComponent("fixtures/tokenizers/wordpiece-bert.json"))
    }()

    @Test func splitMix64MatchesItsPublishedSequence() {
        // The first outputs of SplitMix64 from seed 0, as in Vigna's reference splitmix64.c.
        var generator = SplitMix64(seed: 0)
        #expect(generator.next() == 0xE220_A839_7B1D_CDAF)
        #expect(generator.next() == 0x6E78_9E6A_A1B9_65F4)
        #expect(generator.next() == 0x06C4_5D18_8009_454F)
    }

    @Test func sequencesAreSpecialTokensAroundOrdinaryOnes() throws {
        let sequences = try SyntheticTokens.sequences(tokenizer: Self.tokenizer, count: 5, length: 12, seed: 0)
        let ordinary = Set(Self.tokenizer.ordinaryTokenIDs())
        let empty = Self.tokenizer.encode("")
        #expect(sequences.count == 5)
        for sequence in sequences {
            #expect(sequence.count == 12)
            #expect(sequence.first == empty.first && sequence.last == empty.last)
            #expect(sequence.dropFirst().dropLast().allSatisfy(ordinary.contains))
        }
        #expect(Set(sequences.map { $0 }).count == 5, "different sequences")
    }

    @Test func theSameSeedGivesTheSameSequencesAndAnotherSeedOthers() throws {
        let a = try SyntheticTokens.sequences(tokenizer: Self.tokenizer, count: 3, length: 20, seed: 0)
        let b = try SyntheticTokens.sequences(tokenizer: Self.tokenizer, count: 3, length: 20, seed: 0)
        let c = try SyntheticTokens.sequences(tokenizer: Self.tokenizer, count: 3, length: 20, seed: 1)
        #expect(a == b)
        #expect(a != c)
    }

    @Test func aLengthWithoutRoomForATokenIsRefused() {
        #expect(throws: CalibrationError.self) {
            try SyntheticTokens.sequences(tokenizer: Self.tokenizer, count: 1, length: 2, seed: 0)
        }
    }

    @Test func randomTokensStartFromTheirMeasuredDefaults() {
        let options = CalibrationOptions(source: .randomTokens(seed: 0))
        #expect(options.sequenceLength == 32 && options.gptq.damp == 0.1)
        let text = CalibrationOptions(text: nil)
        #expect(text.source == .builtInText && text.sequenceLength == 128 && text.gptq.damp == 0.01)
        #expect(CalibrationSource.randomTokens(seed: 0).name == "random tokens (seed 0)")
    }
}
