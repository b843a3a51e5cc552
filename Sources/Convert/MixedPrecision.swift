import Foundation
import Formats
import QPKCore
import Quantize

/// Mixed precision (`--allocate`): spends the bit budget of the uniform recipe where the measured
/// error is largest.
///
/// Every tensor the plan quantizes is first quantized with each variant of its decision — every
/// supported width (2, 3, 4 and 8 bits; 2, 3 and 4 with a fitted codebook) at the recipe's group size and at groups of 32, 64 and
/// 128 — each with its bits-per-weight cap moved with the width (``QuantizationDecision/withBits(_:)``,
/// so the outlier room above the codes stays the same), and its effective bits per weight and
/// relative noise energy are measured. The budget is what the uniform decisions spend (bits per
/// weight over the same tensors), so the output is no larger than without `--allocate`.
/// ``BitAllocation`` then picks a variant per tensor (a multiple-choice knapsack solved greedily
/// on convex hulls, never worse than the uniform choice) and the plan's decisions are rewritten
/// to exactly the measured ones: the converter then writes what was measured. Only the
/// measurements are kept between the two passes, so memory stays bounded by the tensors being
/// processed.
public enum MixedPrecision {
    /// The widths a tensor may receive.
    public static let candidateBits = QuantizationRecipe.supportedBits
    /// The group sizes tried besides the recipe's own.
    public static let candidateGroupSizes = [32, 64, 128]

    /// The variants of `decision` that `--allocate` measures for `info`; the first is `decision`
    /// itself. Each is fitted to the tensor's cap (``QuantizationDecision/fitted(to:)``), and
    /// duplicates are measured once.
    public static func variants(of decision: QuantizationDecision, for info: TensorInfo) -> [QuantizationDecision] {
        var groups: [Int?] = [decision.groupSize]
        for g in candidateGroupSizes where !groups.contains(g) { groups.append(g) }
        var result = [decision]
        for bits in candidateBits where decision.allowsBits(bits) {
            for group in groups {
                var variant = decision.withBits(bits)
                variant.groupSize = group
                variant = variant.fitted(to: info)
                if !result.contains(variant) { result.append(variant) }
            }
        }
        return result
    }

    /// Returns `plan` with per-tensor decisions chosen under the uniform decisions' budget;
    /// `importanceMatrix` weights the errors measured as the conversion will (`--imatrix`).
    public static func allocate(
        _ plan: ConversionPlan, reader: any CheckpointReader, workers: Int, importanceMatrix: ImportanceMatrix? = nil
    ) throws -> ConversionPlan {
        let indices = plan.tensors.indices.filter { plan.decision(at: $0) != nil }
        guard !indices.isEmpty else { return plan }
        let measured = try measure(plan, indices: indices, reader: reader, workers: workers, importanceMatrix: importanceMatrix)
        // Option 0 of every candidate is its uniform decision.
        var budgetBits = 0.0, parameters = 0.0
        for candidate in measured {
            budgetBits += candidate.options[0].bitsPerWeight * Double(candidate.parameters)
            parameters += Double(candidate.parameters)
        }
        let chosen = BitAllocation.choose(
            candidates: measured, budgetBitsPerWeight: budgetBits / parameters,
            baseline: [Int](repeating: 0, count: measured.count))
        var result = plan
        for index in indices {
            let entry = plan.tensors[index]
            guard let decision = chosen[entry.source.name]?.decision else { continue }
            result.tensors[index].action = .quantize(decision)
            result.tensors[index].estimatedBytes = decision.estimatedBytes(for: entry.source)
        }
        return result
    }

    /// Quantizes each selected tensor with every variant of its decision and keeps only the
    /// measurements, in the order of `indices`.
    static func measure(
        _ plan: ConversionPlan, indices: [Int], reader: any CheckpointReader, workers: Int,
        importanceMatrix: ImportanceMatrix? = nil
    ) throws -> [TensorCandidate] {
        let order = indices.indices.sorted {
            plan.tensors[indices[$0]].source.elementCount > plan.tensors[indices[$1]].source.elementCount
        }
        return try Parallel.map(order, count: indices.count, workers: workers) { position in
            let entry = plan.tensors[indices[position]]
            let decision = plan.decision(at: indices[position])!
            let values = try Dequantizer.floats(try reader.storage(of: entry.source), info: entry.source)
            let importance = ImportanceWeights.columnWeights(
                for: entry.source, decision: decision, reader: reader, matrix: importanceMatrix)
            return values.withUnsafeBufferPointer {
                TensorCandidate.measure(
                    $0, info: entry.source, variants: variants(of: decision, for: entry.source), columnImportance: importance)
            }
        }
    }
}
