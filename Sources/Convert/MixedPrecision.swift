import Foundation

/// Mixed precision (`--allocate`): spends the bit budget of the uniform recipe where the measured
/// error is largest.
///
/// Every tensor the plan quantizes is first quantized at each supported width (2, 3, 4 and 8 bits,
/// the recipe otherwise unchanged) and its effective bits per weight and relative noise energy are
/// measured. The budget is what the uniform recipe itself spends (bits per weight over the same
/// tensors), so the output is no larger than without `--allocate`. ``BitAllocation`` then picks a
/// width per tensor (a multiple-choice knapsack solved greedily on convex hulls) and the plan's
/// quantize actions are rewritten with the chosen widths. Only the measurements are kept between
/// the two passes, so memory stays bounded by the tensors being processed.
public enum MixedPrecision {
    /// The widths a tensor may receive.
    public static let candidateBits = QuantizationRecipe.supportedBits

    /// Returns `plan` with per-tensor bit widths chosen under the uniform recipe's budget.
    public static func allocate(
        _ plan: ConversionPlan, reader: any CheckpointReader, workers: Int
    ) throws -> ConversionPlan {
        let indices = plan.tensors.indices.filter {
            if case .quantize = plan.tensors[$0].action { return true }
            return false
        }
        guard !indices.isEmpty else { return plan }
        let measured = try measure(plan, indices: indices, reader: reader, workers: workers)
        var budgetBits = 0.0, parameters = 0.0
        for (position, index) in indices.enumerated() {
            guard case let .quantize(recipe) = plan.tensors[index].action else { continue }
            let uniform = measured[position].options.first { $0.bits == recipe.bits }
            budgetBits += (uniform?.bitsPerWeight ?? Double(recipe.bits)) * Double(measured[position].parameters)
            parameters += Double(measured[position].parameters)
        }
        let allocation = BitAllocation.allocate(candidates: measured, budgetBitsPerWeight: budgetBits / parameters)
        var result = plan
        for index in indices {
            guard case var .quantize(recipe) = plan.tensors[index].action,
                  let bits = allocation[plan.tensors[index].source.name] else { continue }
            recipe.bits = bits
            result.tensors[index].action = .quantize(recipe)
            result.tensors[index].estimatedBytes = ConversionPlanner.estimatedQuantizedBytes(
                plan.tensors[index].source, recipe: recipe)
        }
        return result
    }

    /// Quantizes each selected tensor at every candidate width and keeps only the measurements.
    static func measure(
        _ plan: ConversionPlan, indices: [Int], reader: any CheckpointReader, workers: Int
    ) throws -> [TensorCandidate] {
        let results = ResultSlots<TensorCandidate>(count: indices.count)
        let order = indices.indices.sorted { plan.tensors[indices[$0]].source.elementCount > plan.tensors[indices[$1]].source.elementCount }
        try ParallelWork.run(order, workers: workers) { position in
            let entry = plan.tensors[indices[position]]
            guard case let .quantize(recipe) = entry.action else { return }
            let values = try Dequantizer.floats(try reader.storage(of: entry.source), info: entry.source)
            let importance = recipe.importance == .norm
                ? ActivationImportance.columnWeights(for: entry.source, reader: reader) : nil
            let options = candidateBits.map { bits -> TensorCandidate.Option in
                var trial = recipe
                trial.bits = bits
                trial.maxBitsPerWeight = recipe.maxBitsPerWeight.map { $0 - Double(recipe.bits) + Double(bits) }
                let quantized = values.withUnsafeBufferPointer {
                    TensorQuantizer.quantize($0, info: entry.source, recipe: trial, columnImportance: importance)
                }
                return TensorCandidate.Option(quantized)
            }
            results.store(
                TensorCandidate(name: entry.source.name, parameters: entry.source.elementCount, options: options),
                at: position)
        }
        return results.values
    }
}
