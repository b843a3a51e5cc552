import Foundation
import Testing

@testable import Quantize
import QPKCore

@Suite("Importance-weighted group fit")
struct WeightedGroupFitTests {
    /// Weights spanning three orders of magnitude, like LayerNorm γ² across channels.
    func skewedWeights(_ count: Int, using rng: inout SeededGenerator) -> [Float] {
        (0..<count).map { _ in Float.random(in: 0.01...1, using: &rng) * (Double.random(in: 0..<1, using: &rng) < 0.05 ? 50 : 1) }
    }

    @Test("The weighted MSE search never has more weighted error than the unweighted one", arguments: [
        (QuantizationScheme.affine, 4), (.affine, 3), (.symmetric, 4), (.affine, 2),
    ])
    func weightedNeverWorse(scheme: QuantizationScheme, bits: Int) {
        var rng = SeededGenerator(seed: 41 + UInt64(bits))
        for _ in 0..<50 {
            let values = rng.weights(128)
            let weights = skewedWeights(128, using: &rng)
            values.withUnsafeBufferPointer { v in
                weights.withUnsafeBufferPointer { w in
                    let plain = GroupFit.fit(v, bits: bits, scheme: scheme, search: .mse)
                    let weighted = WeightedGroupFit.fit(v, weights: w, bits: bits, scheme: scheme, search: .mse)
                    let plainError = WeightedGroupFit.squaredError(v, weights: w, parameters: plain, bits: bits)
                    let weightedError = WeightedGroupFit.squaredError(v, weights: w, parameters: weighted, bits: bits)
                    #expect(weightedError <= plainError * (1 + 1e-5))
                }
            }
        }
    }

    @Test("Uniform weights reproduce the unweighted fit exactly")
    func uniformWeightsMatchGroupFit() {
        var rng = SeededGenerator(seed: 7)
        for _ in 0..<30 {
            let values = rng.weights(64)
            let ones = [Float](repeating: 1, count: 64)
            values.withUnsafeBufferPointer { v in
                ones.withUnsafeBufferPointer { w in
                    #expect(WeightedGroupFit.fit(v, weights: w, bits: 4, scheme: .affine, search: .mse)
                        == GroupFit.fit(v, bits: 4, scheme: .affine, search: .mse))
                }
            }
        }
    }

    @Test("A heavily weighted column is reconstructed more accurately than without weights")
    func importantColumnGetsLessError() {
        var rng = SeededGenerator(seed: 99)
        var gained = 0
        for _ in 0..<40 {
            let values = rng.weights(128)
            var weights = [Float](repeating: 1, count: 128)
            weights[5] = 1000
            values.withUnsafeBufferPointer { v in
                weights.withUnsafeBufferPointer { w in
                    let plain = GroupFit.fit(v, bits: 3, scheme: .affine, search: .mse)
                    let weighted = WeightedGroupFit.fit(v, weights: w, bits: 3, scheme: .affine, search: .mse)
                    func error(_ p: GroupParameters) -> Float {
                        let one = [values[5]]
                        return one.withUnsafeBufferPointer { GroupFit.squaredError($0, parameters: p, bits: 3) }
                    }
                    if error(weighted) < error(plain) { gained += 1 }
                    #expect(error(weighted) <= error(plain) + 1e-12)
                }
            }
        }
        #expect(gained > 20)
    }

    @Test("Other searches ignore the weights")
    func minmaxIgnoresWeights() {
        var rng = SeededGenerator(seed: 3)
        let values = rng.weights(32)
        let weights = skewedWeights(32, using: &rng)
        values.withUnsafeBufferPointer { v in
            weights.withUnsafeBufferPointer { w in
                #expect(WeightedGroupFit.fit(v, weights: w, bits: 4, scheme: .affine, search: .minmax)
                    == GroupFit.fit(v, bits: 4, scheme: .affine, search: .minmax))
            }
        }
    }

    @Test("The tensor quantizer with column importance lowers the importance-weighted error")
    func tensorQuantizerUsesImportance() {
        var rng = SeededGenerator(seed: 12)
        let rows = 16, columns = 256
        let values = rng.weights(rows * columns)
        let info = TensorInfo(name: "w", dtype: .f32, shape: [rows, columns])
        var recipe = QuantizationRecipe.default
        recipe.importance = .norm
        let importance = (0..<columns).map { c in Float(c % 16 == 0 ? 40 : 1) }
        let plain = TensorQuantizer.quantize(values, info: info, recipe: recipe)
        let weighted = TensorQuantizer.quantize(values, info: info, recipe: recipe, columnImportance: importance)
        func weightedError(_ q: QuantizedTensor) -> Double {
            let restored = (try? Dequantizer.floats(.quantized(q), info: info)) ?? []
            var sum = 0.0
            for i in 0..<(rows * columns) {
                let e = Double(restored[i] - values[i])
                sum += Double(importance[i % columns]) * e * e
            }
            return sum
        }
        #expect(weightedError(weighted) < weightedError(plain))
        // A wrong-length importance is ignored: the unweighted result.
        let ignored = TensorQuantizer.quantize(values, info: info, recipe: recipe, columnImportance: [1, 2, 3])
        #expect(ignored.codes == plain.codes && ignored.scales == plain.scales)
    }

    @Test("Second moments become mean-normalised weights with a floor")
    func weightsFromMoments() throws {
        let w = try #require(ColumnImportance.weights(secondMoments: [1, 1, 4, 0, .nan], exponent: 1))
        #expect(w.count == 5)
        #expect(abs(w[2] - 4 / 1.2) < 1e-5)
        #expect(w[3] == Float(ColumnImportance.floor) && w[4] == Float(ColumnImportance.floor))
        #expect(ColumnImportance.weights(secondMoments: [0, 0]) == nil)
        #expect(ColumnImportance.usable([1, -1], columns: 2) == nil)
        #expect(ColumnImportance.usable([1, 2], columns: 3) == nil)
        #expect(ColumnImportance.usable([1, 2], columns: 2) == [1, 2])
    }

    @Test("The recipe records its importance and round-trips it")
    func recipeRoundTrip() {
        #expect(QuantizationRecipe.default.importance == .norm)
        #expect(QuantizationRecipe.rtn(bits: 4).importance == .none)
        for importance in QuantizationRecipe.Importance.allCases {
            var recipe = QuantizationRecipe.default
            recipe.importance = importance
            let decoded = try? JSONDecoder().decode(QuantizationRecipe.self, from: JSONEncoder().encode(recipe))
            #expect(decoded == recipe)
        }
        var old = try! JSONSerialization.jsonObject(with: JSONEncoder().encode(QuantizationRecipe.default)) as! [String: Any]
        old["importance"] = nil
        let withoutImportance = try? JSONDecoder().decode(
            QuantizationRecipe.self, from: JSONSerialization.data(withJSONObject: old))
        #expect(withoutImportance?.importance == QuantizationRecipe.Importance.none)
        old["importance"] = "bogus"
        #expect((try? JSONDecoder().decode(QuantizationRecipe.self, from: JSONSerialization.data(withJSONObject: old))) == nil)
        #expect(QuantizationRecipe.default.description.contains(" importance=norm"))
    }

    @Test("Codable keeps the importance; JSON without it decodes as none")
    func recipeCodable() throws {
        let data = try JSONEncoder().encode(QuantizationRecipe.default)
        #expect(try JSONDecoder().decode(QuantizationRecipe.self, from: data) == QuantizationRecipe.default)
        var object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        object["importance"] = nil
        let old = try JSONSerialization.data(withJSONObject: object)
        #expect(try JSONDecoder().decode(QuantizationRecipe.self, from: old).importance == .none)
    }
}
