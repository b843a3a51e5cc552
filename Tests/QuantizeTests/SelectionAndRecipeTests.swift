import Foundation
import Testing

@testable import Quantize
import QPKCore

@Suite("Default tensor selection and its glob overrides")
struct TensorSelectionTests {
    let weight = TensorInfo(name: "encoder.layer.0.attention.self.query.weight", dtype: .f32, shape: [384, 384])
    let bias = TensorInfo(name: "encoder.layer.0.attention.self.query.bias", dtype: .f32, shape: [384])
    let small = TensorInfo(name: "embeddings.token_type_embeddings.weight", dtype: .bf16, shape: [2, 384])
    let ids = TensorInfo(name: "embeddings.position_ids", dtype: .i64, shape: [1, 8192])

    @Test("floating, rank ≥ 2, at least 4096 elements")
    func defaults() {
        #expect(TensorSelection.shouldQuantize(weight, include: [], exclude: []))
        #expect(!TensorSelection.shouldQuantize(bias, include: [], exclude: []))
        #expect(!TensorSelection.shouldQuantize(small, include: [], exclude: []))
        #expect(!TensorSelection.shouldQuantize(ids, include: [], exclude: []))
        let exactly = TensorInfo(name: "x", dtype: .f16, shape: [64, 64])
        let under = TensorInfo(name: "x", dtype: .f16, shape: [63, 65])
        #expect(TensorSelection.isQuantizableByDefault(exactly))
        #expect(!TensorSelection.isQuantizableByDefault(under))
    }

    @Test("--include forces floating tensors in, --exclude keeps tensors out, exclusion wins")
    func globs() {
        #expect(TensorSelection.shouldQuantize(bias, include: [Glob("*.bias")], exclude: []))
        #expect(TensorSelection.shouldQuantize(small, include: [Glob("embeddings.*")], exclude: []))
        #expect(!TensorSelection.shouldQuantize(ids, include: [Glob("*")], exclude: []))
        #expect(!TensorSelection.shouldQuantize(weight, include: [], exclude: [Glob("encoder.layer.0.*")]))
        #expect(!TensorSelection.shouldQuantize(weight, include: [Glob("*")], exclude: [Glob("*query*")]))
        #expect(TensorSelection.shouldQuantize(weight, include: [], exclude: [Glob("encoder.layer.1.*")]))
    }
}

@Suite("Quantization recipes")
struct QuantizationRecipeTests {
    @Test("budgets parse as fractions or percentages")
    func parseBudget() {
        #expect(QuantizationRecipe.parseBudget("0.5%") == 0.005)
        #expect(QuantizationRecipe.parseBudget(" 0.005 ") == 0.005)
        #expect(QuantizationRecipe.parseBudget("0") == 0)
        #expect(QuantizationRecipe.parseBudget("1%") == 0.01)
        #expect(QuantizationRecipe.parseBudget("abc") == nil)
        #expect(QuantizationRecipe.parseBudget("%") == nil)
        #expect(QuantizationRecipe.parseBudget("-1%") == nil)
        #expect(QuantizationRecipe.parseBudget("60%") == nil)
        #expect(QuantizationRecipe.parseBudget("nan") == nil)
    }

    @Test("group sizes parse as integers or 'row'")
    func parseGroupSize() {
        #expect(QuantizationRecipe.parseGroupSize("64") == .some(64))
        #expect(QuantizationRecipe.parseGroupSize("row") == .some(nil))
        #expect(QuantizationRecipe.parseGroupSize("0") == nil)
        #expect(QuantizationRecipe.parseGroupSize("x") == nil)
    }

    @Test("the default is PreQuant 4-bit with a fitted table, groups of 20, 8-bit log-coded scales, 0.5% element outliers capped at 4.5 bpw")
    func defaultRecipe() throws {
        let d = QuantizationRecipe.default
        #expect(d.method == .prequant)
        #expect(d.bits == 4 && d.groupSize == 20 && d.scaleSearch == .mse && d.scheme == .symmetric)
        #expect(d.codebook == .lloyd && d.zeroPoints == .implicit && d.scaleCodes == ScaleCodes(bits: 8, octaves: 6))
        #expect(d.outlierKind.resolved == .elements)
        #expect(d.outlierBudget == 0.005 && d.maxBitsPerWeight == 4.5)
        #expect(d.description == "prequant symmetric 4-bit g20 mse outliers=elements 0.5% ≤4.5bpw importance=norm zero-points=none codebook=lloyd scale-codes=8b/6oct")
        #expect(QuantizationRecipe.prequant(bits: 3).maxBitsPerWeight == 3.5)
        #expect(QuantizationRecipe.prequant(bits: 3).groupSize == 16 && QuantizationRecipe.prequant(bits: 3).scaleCodes == ScaleCodes(bits: 6, octaves: 6))
        #expect(QuantizationRecipe.prequant(bits: 8) == .uniform(bits: 8))
        let uniform = QuantizationRecipe.uniform(bits: 4)
        #expect(uniform.description == "prequant affine 4-bit g96 mse outliers=elements 0.5% ≤4.5bpw importance=norm")
        try uniform.validate()
        #expect(QuantizationRecipe.rtn(bits: 4).description == "rtn affine 4-bit g64 minmax")
        #expect(QuantizationRecipe(method: .prequant).outlierBudget == 0.005)
        #expect(QuantizationRecipe(method: .rtn).outlierBudget == 0)
        try d.validate()
    }

    @Test("the recipe has one JSON form, with the decision's snake_case keys, and it round-trips")
    func roundTrips() throws {
        for recipe in [QuantizationRecipe.default, .rtn(bits: 2, groupSize: nil, scheme: .symmetric)] {
            let json = try JSONEncoder().encode(recipe)
            let decoded = try JSONDecoder().decode(QuantizationRecipe.self, from: json)
            // `auto` outliers are written as the kind they stand for: the same decisions.
            #expect(decoded.decision() == recipe.decision())
        }
        let object = try #require(
            try JSONSerialization.jsonObject(with: JSONEncoder().encode(QuantizationRecipe.default)) as? [String: Any])
        #expect(object["group_size"] as? Int == 20 && object["max_bits_per_weight"] as? Double == 4.5)
        #expect(object["codebook"] as? String == "lloyd")
        #expect((object["scale_codes"] as? [String: Int]) == ["bits": 8, "octaves": 6])
        #expect(object["scale_search"] as? String == "mse" && object["outlier_kind"] as? String == "elements")
        let row = try #require(
            try JSONSerialization.jsonObject(with: JSONEncoder().encode(QuantizationRecipe.rtn(bits: 4, groupSize: nil))) as? [String: Any])
        #expect(row["group_size"] is NSNull && row["max_bits_per_weight"] is NSNull)
        // QPK files written before the recipe had one form said "row" for per-row groups.
        let older = #"{"method":"rtn","scheme":"affine","bits":4,"group_size":"row","scale_search":"minmax","outlier_budget":0,"outlier_kind":"auto"}"#
        let decoded = try JSONDecoder().decode(QuantizationRecipe.self, from: Data(older.utf8))
        #expect(decoded.groupSize == nil && decoded.importance == .none && decoded.maxBitsPerWeight == nil)
        #expect(throws: (any Error).self) {
            try JSONDecoder().decode(QuantizationRecipe.self, from: Data(#"{"method":"rtn"}"#.utf8))
        }
        #expect(throws: (any Error).self) {
            try JSONDecoder().decode(QuantizationRecipe.self, from: Data(older.replacingOccurrences(of: "\"bits\":4", with: "\"bits\":5").utf8))
        }
    }

    @Test("invalid recipes are rejected with a one-line hint")
    func validation() {
        #expect(throws: QuantizationRecipe.Invalid.bits(5)) { try QuantizationRecipe(bits: 5).validate() }
        #expect(throws: QuantizationRecipe.Invalid.groupSize(0)) { try QuantizationRecipe(groupSize: 0).validate() }
        #expect(throws: QuantizationRecipe.Invalid.outlierBudget(0.9)) { try QuantizationRecipe(outlierBudget: 0.9).validate() }
        #expect(throws: QuantizationRecipe.Invalid.maxBitsPerWeight(0)) { try QuantizationRecipe(maxBitsPerWeight: 0).validate() }
        let message = QuantizationRecipe.Invalid.bits(5).description
        #expect(message.contains("--bits") && !message.contains("\n"))
    }
}
