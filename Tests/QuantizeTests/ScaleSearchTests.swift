import Testing

@testable import Quantize
import QPKCore

@Suite("Scale search: MSE clipping and half-quadratic optimization")
struct ScaleSearchTests {
    /// 300 seeded groups of mixed sizes and shapes (normal, heavy-tailed, skewed, tiny).
    static func groups() -> [[Float]] {
        var rng = SeededGenerator(seed: 2023)
        return (0..<300).map { i in
            let n = [7, 32, 64, 128, 130][i % 5]
            switch i % 4 {
            case 0: return rng.weights(n)
            case 1: return (0..<n).map { _ in rng.gaussian() * 0.02 }
            case 2: return rng.weights(n).map { abs($0) + 0.3 }
            default: return (0..<n).map { _ in rng.gaussian() * 1e-3 * (rng.gaussian() > 2 ? 30 : 1) }
            }
        }
    }

    static func error(_ group: [Float], _ p: GroupParameters, bits: Int) -> Float {
        group.withUnsafeBufferPointer { GroupFit.squaredError($0, parameters: p, bits: bits) }
    }

    static func fit(_ group: [Float], bits: Int, _ scheme: QuantizationScheme, _ search: QuantizationRecipe.ScaleSearch) -> GroupParameters {
        group.withUnsafeBufferPointer { GroupFit.fit($0, bits: bits, scheme: scheme, search: search) }
    }

    @Test("MSE clipping never has more error than min-max on the same group", arguments: [2, 3, 4, 8])
    func mseNeverWorse(bits: Int) {
        var strictlyBetter = 0
        for scheme in QuantizationScheme.allCases {
            for group in Self.groups() {
                let minmax = Self.error(group, Self.fit(group, bits: bits, scheme, .minmax), bits: bits)
                let mse = Self.error(group, Self.fit(group, bits: bits, scheme, .mse), bits: bits)
                #expect(mse <= minmax)
                if mse < minmax * 0.999 { strictlyBetter += 1 }
            }
        }
        // Clipping must actually help on heavy-tailed groups, not just tie (at 8 bits it rarely can).
        if bits <= 4 { #expect(strictlyBetter > 100) }
    }

    @Test("HQQ never ends worse than its min-max start", arguments: [2, 3, 4, 8])
    func hqqNeverWorse(bits: Int) {
        var strictlyBetter = 0
        for scheme in QuantizationScheme.allCases {
            for group in Self.groups() {
                let minmax = Self.error(group, Self.fit(group, bits: bits, scheme, .minmax), bits: bits)
                let hqq = Self.error(group, Self.fit(group, bits: bits, scheme, .hqq), bits: bits)
                #expect(hqq <= minmax)
                if hqq < minmax * 0.999 { strictlyBetter += 1 }
            }
        }
        #expect(strictlyBetter > 50)
    }

    @Test("HQQ keeps the min-max scale and moves only the zero-point (affine)")
    func hqqKeepsScale() {
        for group in Self.groups().prefix(40) {
            let start = Self.fit(group, bits: 4, .affine, .minmax)
            let hqq = Self.fit(group, bits: 4, .affine, .hqq)
            #expect(hqq.scale == start.scale)
        }
    }

    @Test("the shrinkage operator zeroes small residuals and shrinks large ones toward zero")
    func shrink() {
        #expect(HalfQuadratic.shrink(0.01, beta: 10) == 0)
        let big = HalfQuadratic.shrink(3, beta: 10)
        #expect(big > 2.9 && big < 3)
        #expect(HalfQuadratic.shrink(-3, beta: 10) == -big)
    }

    @Test("a constant group is exact, and an all-zero group gives scale 0")
    func degenerateGroups() {
        for search in QuantizationRecipe.ScaleSearch.allCases {
            let constant = [Float](repeating: 0.25, count: 64)
            let p = Self.fit(constant, bits: 4, .affine, search)
            #expect(Self.error(constant, p, bits: 4) == 0)
            let zero = [Float](repeating: 0, count: 64)
            #expect(Self.fit(zero, bits: 4, .affine, search).scale == 0)
            #expect(Self.error(zero, Self.fit(zero, bits: 4, .symmetric, search), bits: 4) == 0)
        }
    }
}
