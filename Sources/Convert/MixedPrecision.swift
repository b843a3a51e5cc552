import Foundation
import Formats
import QPKCore
import Quantize

/// Mixed precision (`--allocate`): spends the bit budget of the uniform recipe where the measured
/// error is largest.
///
/// Every tensor the plan quantizes is first quantized at each supported width (2, 3, 4 and 8 bits)
/// with its own decision at that width (``QuantizationDecision/withBits(_:)``: the bits-per-weight
/// cap moves with the width, so the outlier room stays the same), and its effective bits per
/// weight and relative noise energy are measured. The budget is what the uniform decisions spend
/// (bits per weight over the same tensors), so the output is no larger than without `--allocate`.
/// ``BitAllocation`` then picks a width per tensor (a multiple-choice knapsack solved greedily on
/// convex hulls) and the plan's decisions are rewritten to exactly the measured ones: the
/// converter then writes what was measured. Only the measurements are kept between the two passes,
/// so memory stays bounded by the tensors being processed.
public enum MixedPrecision {
    /// The widths a tensor may receive.
    public static let candidateBits = QuantizationRecipe.supportedBits

    /// Returns `plan` with per-tensor bit widths chosen under the uniform decisions' budget.
    public static func allocate(
        _ plan: ConversionPlan, reader: any CheckpointReader, workers: Int
    ) throws -> ConversionPlan {
        let indices = plan.tensors.indices.filter { plan.decision(at: $0) != nil }
        guard !indices.isEmpty else { return plan }
        let measured = try measure(plan, indices: indices, reader: reader, workers: workers)
        var budgetBits = 0.0, parameters = 0.0
        for (position, index) in indices.enumerated() {
            let bits = plan.decision(at: index)!.bits
            let uniform = measured[position].options.first { $0.bits == bits }
            budgetBits += (uniform?.bitsPerWeight ?? Double(bits)) * Double(measured[position].parameters)
            parameters += Double(measured[position].parameters)
        }
        let allocation = BitAllocation.allocate(candidates: measured, budgetBitsPerWeight: budgetBits / parameters)
        var result = plan
        for index in indices {
            let entry = plan.tensors[index]
            guard let decision = plan.decision(at: index), let bits = allocation[entry.source.name] else { continue }
            let chosen = decision.withBits(bits)
            result.tensors[index].action = .quantize(chosen)
            result.tensors[index].estimatedBytes = chosen.estimatedBytes(for: entry.source)
        }
        return result
    }

    /// Quantizes each selected tensor at every candidate width and keeps only the measurements.
    static func measure(
        _ plan: ConversionPlan, indices: [Int], reader: any CheckpointReader, workers: Int
    ) throws -> [TensorCandidate] {
        let order = indices.indices.sorted {
            plan.tensors[indices[$0]].source.elementCount > plan.tensors[indices[$1]].source.elementCount
        }
        return try Parallel.map(order, count: indices.count, workers: workers) { position in
            let entry = plan.tensors[indices[position]]
            let decision = plan.decision(at: indices[position])!
            let values = try Dequantizer.floats(try reader.storage(of: entry.source), info: entry.source)
            let importance = ActivationImportance.columnWeights(for: entry.source, decision: decision, reader: reader)
            return values.withUnsafeBufferPointer {
                TensorCandidate.measure(
                    $0, info: entry.source, decision: decision, columnImportance: importance, bits: candidateBits)
            }
        }
    }
}
