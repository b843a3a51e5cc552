import QPKCore

/// One tensor's quantization options for ``BitAllocation``: what each bit width costs and how much
/// error it leaves.
public struct TensorCandidate: Sendable, Hashable {
    public struct Option: Sendable, Hashable {
        public var bits: Int
        /// Effective bits per weight of this option (codes, scales, zeros and outliers).
        public var bitsPerWeight: Double
        /// The error this option leaves, in any additive unit (see ``BitAllocation``).
        public var error: Double
        /// The decision that was measured, when the option comes from quantizing.
        public var decision: QuantizationDecision?

        public init(bits: Int, bitsPerWeight: Double, error: Double, decision: QuantizationDecision? = nil) {
            self.bits = bits
            self.bitsPerWeight = bitsPerWeight
            self.error = error
            self.decision = decision
        }

        /// An option measured by quantizing: its error is the relative noise energy
        /// `10^(−SQNR/10)` times the parameter count, so every parameter counts equally and each
        /// tensor's error is relative to its own scale.
        public init(_ tensor: QuantizedTensor) {
            let sqnr = tensor.error?.sqnrDB ?? 0
            let relative = sqnr.isFinite ? pow10(-sqnr / 10) : (sqnr > 0 ? 0 : 1)
            self.init(
                bits: tensor.layout.bits, bitsPerWeight: tensor.bitsPerWeight,
                error: relative * Double(tensor.info.elementCount), decision: tensor.decision)
        }
    }

    public var name: String
    public var parameters: Int
    public var options: [Option]

    public init(name: String, parameters: Int, options: [Option]) {
        self.name = name
        self.parameters = parameters
        self.options = options
    }
}

/// Mixed precision: chooses a bit width per tensor to minimize the total error under an average
/// bits-per-weight budget (spec/quantization.md §6).
///
/// This is a multiple-choice knapsack, solved by the classic greedy on convex hulls (the
/// Lagrangian relaxation of the problem): every tensor starts at its cheapest option; each tensor's
/// options are reduced to the lower convex hull of (bits, error); then the upgrade with the largest
/// error reduction per extra bit that still fits the budget is applied, until none fits. On the
/// hull, marginal gains decrease, so greedy order equals Lagrangian order.
public enum BitAllocation {
    /// Bits per tensor name. If even the cheapest options exceed the budget, those are returned.
    public static func allocate(candidates: [TensorCandidate], budgetBitsPerWeight: Double) -> [String: Int] {
        choose(candidates: candidates, budgetBitsPerWeight: budgetBitsPerWeight).mapValues(\.bits)
    }

    /// The chosen option per tensor name, never worse than `baseline` when one is given.
    ///
    /// The greedy stops when no upgrade fits what is left of the budget, so it can end below the
    /// budget with more total error than a uniform choice that spends it exactly; `baseline` (an
    /// option index per candidate, e.g. the uniform recipe's) is then kept instead.
    public static func choose(
        candidates: [TensorCandidate], budgetBitsPerWeight: Double, baseline: [Int]? = nil
    ) -> [String: TensorCandidate.Option] {
        let hulls = candidates.map { hull($0.options) }
        var level = [Int](repeating: 0, count: candidates.count)
        let totalParameters = candidates.reduce(0.0) { $0 + Double($1.parameters) }
        let budgetBits = budgetBitsPerWeight * totalParameters
        var spent = 0.0
        for (i, c) in candidates.enumerated() where !hulls[i].isEmpty {
            spent += hulls[i][0].bitsPerWeight * Double(c.parameters)
        }
        while true {
            var bestIndex = -1
            var bestRatio = 0.0
            var bestCost = 0.0
            for (i, c) in candidates.enumerated() where level[i] + 1 < hulls[i].count {
                let now = hulls[i][level[i]], next = hulls[i][level[i] + 1]
                let cost = (next.bitsPerWeight - now.bitsPerWeight) * Double(c.parameters)
                let gain = now.error - next.error
                guard cost > 0, gain > 0, spent + cost <= budgetBits * (1 + 1e-12) else { continue }
                let ratio = gain / cost
                if ratio > bestRatio {
                    bestRatio = ratio
                    bestIndex = i
                    bestCost = cost
                }
            }
            guard bestIndex >= 0 else { break }
            level[bestIndex] += 1
            spent += bestCost
        }
        var result: [String: TensorCandidate.Option] = [:]
        var chosenError = 0.0
        for (i, c) in candidates.enumerated() where !hulls[i].isEmpty {
            result[c.name] = hulls[i][level[i]]
            chosenError += hulls[i][level[i]].error
        }
        if let baseline {
            let baselineError = zip(candidates, baseline).reduce(0.0) { $0 + $1.0.options[$1.1].error }
            if baselineError <= chosenError {
                return Dictionary(uniqueKeysWithValues: zip(candidates, baseline).map { ($0.name, $0.options[$1]) })
            }
        }
        return result
    }

    /// The average bits per weight of an allocation (for reports and tests).
    public static func bitsPerWeight(of allocation: [String: Int], candidates: [TensorCandidate]) -> Double {
        var bits = 0.0, parameters = 0.0
        for c in candidates {
            guard let b = allocation[c.name], let option = c.options.first(where: { $0.bits == b }) else { continue }
            bits += option.bitsPerWeight * Double(c.parameters)
            parameters += Double(c.parameters)
        }
        return parameters == 0 ? 0 : bits / parameters
    }

    /// The lower convex hull of options by (bitsPerWeight, error), cheapest first; options that are
    /// dearer and no better are dropped.
    static func hull(_ options: [TensorCandidate.Option]) -> [TensorCandidate.Option] {
        let sorted = options.filter { $0.bitsPerWeight.isFinite && $0.error.isFinite }
            .sorted { $0.bitsPerWeight != $1.bitsPerWeight ? $0.bitsPerWeight < $1.bitsPerWeight : $0.error < $1.error }
        var frontier: [TensorCandidate.Option] = []
        for option in sorted {
            if let last = frontier.last, option.error >= last.error { continue }
            if let last = frontier.last, last.bitsPerWeight == option.bitsPerWeight { frontier.removeLast() }
            frontier.append(option)
        }
        var hull: [TensorCandidate.Option] = []
        for option in frontier {
            while hull.count >= 2 {
                let a = hull[hull.count - 2], b = hull[hull.count - 1]
                // b is above the segment a→option: its slope is not steeper, drop it.
                let slopeAB = (a.error - b.error) / (b.bitsPerWeight - a.bitsPerWeight)
                let slopeBO = (b.error - option.error) / (option.bitsPerWeight - b.bitsPerWeight)
                if slopeBO >= slopeAB { hull.removeLast() } else { break }
            }
            hull.append(option)
        }
        return hull
    }
}

#if canImport(Glibc)
import Glibc
@inline(__always) func pow10(_ x: Double) -> Double { Glibc.pow(10, x) }
#elseif canImport(Darwin)
import Darwin
@inline(__always) func pow10(_ x: Double) -> Double { Darwin.pow(10, x) }
#endif

extension TensorCandidate {
    /// Quantizes `values` as `decision` says at each of `bits` its codebook allows (each width
    /// with its cap moved by ``QuantizationDecision/withBits(_:)`` and its groups widened to fit
    /// it, ``QuantizationDecision/fitted(to:)``, exactly as the chosen width will later be written)
    /// and collects the options, for `--allocate`. The quantized tensors are not kept (memory
    /// stays one tensor at a time); re-quantize with the chosen decision.
    public static func measure(
        _ values: UnsafeBufferPointer<Float>, info: TensorInfo, decision: QuantizationDecision,
        columnImportance: [Float]? = nil, bits: [Int] = QuantizationRecipe.supportedBits
    ) -> TensorCandidate {
        let variants = bits.filter(decision.allowsBits).map { decision.withBits($0).fitted(to: info) }
        return measure(values, info: info, variants: variants, columnImportance: columnImportance)
    }

    /// Quantizes `values` with each of `variants` and collects the options.
    public static func measure(
        _ values: UnsafeBufferPointer<Float>, info: TensorInfo, variants: [QuantizationDecision],
        columnImportance: [Float]? = nil
    ) -> TensorCandidate {
        let options = variants.map { variant -> Option in
            Option(TensorQuantizer.quantize(values, info: info, decision: variant, columnImportance: columnImportance))
        }
        return TensorCandidate(name: info.name, parameters: info.elementCount, options: options)
    }
}
