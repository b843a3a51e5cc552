import Foundation
import Testing

@testable import Quantize
import QPKCore

@Suite("Mixed precision bit allocation")
struct BitAllocationTests {
    /// Error halves-ish per extra bit; `weight` scales a tensor's sensitivity.
    static func candidate(_ name: String, parameters: Int, weight: Double) -> TensorCandidate {
        TensorCandidate(name: name, parameters: parameters, options: [
            .init(bits: 2, bitsPerWeight: 2.25, error: weight * 16),
            .init(bits: 3, bitsPerWeight: 3.25, error: weight * 4),
            .init(bits: 4, bitsPerWeight: 4.25, error: weight * 1),
            .init(bits: 8, bitsPerWeight: 8.25, error: weight * 0.004),
        ])
    }

    @Test("the budget is respected and the sensitive tensor gets the bits", arguments: [2.5, 3.25, 4.25, 5.0, 9.0])
    func respectsBudget(budget: Double) {
        let candidates = [
            Self.candidate("attention", parameters: 1000, weight: 10),
            Self.candidate("ffn.in", parameters: 4000, weight: 1),
            Self.candidate("ffn.out", parameters: 4000, weight: 1),
        ]
        let allocation = BitAllocation.allocate(candidates: candidates, budgetBitsPerWeight: budget)
        #expect(allocation.count == 3)
        #expect(BitAllocation.bitsPerWeight(of: allocation, candidates: candidates) <= budget + 1e-9)
        #expect(allocation["attention"]! >= allocation["ffn.in"]!)
    }

    @Test("an ample budget buys the most accurate option everywhere; a too-small one gives the cheapest")
    func extremes() {
        let candidates = [Self.candidate("a", parameters: 10, weight: 1), Self.candidate("b", parameters: 10, weight: 2)]
        #expect(BitAllocation.allocate(candidates: candidates, budgetBitsPerWeight: 100) == ["a": 8, "b": 8])
        #expect(BitAllocation.allocate(candidates: candidates, budgetBitsPerWeight: 1) == ["a": 2, "b": 2])
    }

    @Test("the allocation spends the budget far better than a uniform choice")
    func beatsUniform() {
        // Error falls 4× per bit (6 dB); the small tensor is 1000× more sensitive.
        func candidate(_ name: String, _ parameters: Int, _ weight: Double) -> TensorCandidate {
            TensorCandidate(name: name, parameters: parameters, options: [2, 3, 4, 8].map {
                .init(bits: $0, bitsPerWeight: Double($0) + 0.25, error: weight * 256 / pow(4, Double($0)))
            })
        }
        let candidates = [candidate("big", 400, 1), candidate("sensitive", 100, 1000)]
        let allocation = BitAllocation.allocate(candidates: candidates, budgetBitsPerWeight: 4.25)
        #expect(allocation == ["big": 3, "sensitive": 8])
        #expect(BitAllocation.bitsPerWeight(of: allocation, candidates: candidates) <= 4.25 + 1e-9)
    }

    @Test("an option measured from a quantized tensor carries its bits, bpw and relative error")
    func optionFromTensor() {
        var rng = SeededGenerator(seed: 60)
        let values = rng.weights(64 * 64)
        let q = TensorQuantizer.quantize(values, info: matrix(64, 64), recipe: .rtn(bits: 3, groupSize: 64))
        let option = TensorCandidate.Option(q)
        #expect(option.bits == 3)
        #expect(option.bitsPerWeight == q.bitsPerWeight)
        #expect(option.error > 0 && option.error < Double(64 * 64))
    }

    @Test("measuring a tensor at every width gives options whose error falls as bits rise")
    func measure() {
        var rng = SeededGenerator(seed: 61)
        let values = rng.weights(32 * 128)
        let candidate = values.withUnsafeBufferPointer {
            TensorCandidate.measure($0, info: matrix(32, 128), decision: QuantizationRecipe.uniform(bits: 4).decision())
        }
        #expect(candidate.options.map(\.bits) == [2, 3, 4, 8])
        // A fitted table exists for 2, 3 and 4 bits only.
        let fitted = values.withUnsafeBufferPointer {
            TensorCandidate.measure($0, info: matrix(32, 128), decision: QuantizationRecipe.default.decision())
        }
        #expect(fitted.options.map(\.bits) == [2, 3, 4])
        for option in fitted.options { #expect(option.bitsPerWeight <= Double(option.bits) + 0.5) }
        #expect(candidate.parameters == 32 * 128)
        let errors = candidate.options.map(\.error)
        #expect(errors == errors.sorted(by: >))
        // Each width is measured under its own cap, bits + 0.5, exactly as it would be written.
        for option in candidate.options {
            #expect(option.bitsPerWeight <= Double(option.bits) + 0.5)
        }
    }
}
