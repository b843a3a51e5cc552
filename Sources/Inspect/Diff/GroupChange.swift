import Foundation
import QPKCore

/// How much a group of common tensors changed: a layer (``LayerGrouping``), a ``LayerKind``, or
/// one kind within one layer. `qpk diff --json` lists them as `layers`, `kinds` and `layer_kinds`
/// (spec/json-schemas.md), and the HTML report draws them along the depth of the model.
///
/// The figures pool the sums of the tensors compared value by value (status `equal`, `close` or
/// `different`), as if the group were one tensor: relative L2 = √(ΣΣ(a−b)² / ΣΣa²), cosine =
/// ΣΣab / √(ΣΣa²·ΣΣb²), SQNR = 10·log10(ΣΣa² / ΣΣ(a−b)²). Byte-identical tensors are never decoded,
/// so they add no change and no norm: the figures describe the group's changed tensors. A group
/// whose tensors are all identical has relative L2 0, cosine 1 and SQNR `inf`.
public struct GroupChange: Sendable, Codable, Equatable {
    /// The layer prefix (`nil` for a ``LayerKind`` total).
    public var prefix: String?
    /// The kind (`nil` for a layer total).
    public var kind: LayerKind?
    /// Common tensors in the group, and how many of them were compared value by value.
    public var tensors: Int
    public var changed: Int
    /// Elements of the tensors compared value by value.
    public var elements: Int
    public var relativeL2: Double?
    public var cosine: Double?
    public var sqnrDB: Double?
    /// The largest |a − b| over the group's finite pairs.
    public var maxAbs: Double?

    enum CodingKeys: String, CodingKey {
        case prefix, kind, tensors, changed, elements, cosine
        case relativeL2 = "relative_l2"
        case sqnrDB = "sqnr_db"
        case maxAbs = "max_abs"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(prefix, forKey: .prefix)
        try c.encode(kind, forKey: .kind)
        try c.encode(tensors, forKey: .tensors)
        try c.encode(changed, forKey: .changed)
        try c.encode(elements, forKey: .elements)
        try c.encode(relativeL2, forKey: .relativeL2)
        try c.encode(cosine, forKey: .cosine)
        try c.encode(sqnrDB, forKey: .sqnrDB)
        try c.encode(maxAbs, forKey: .maxAbs)
    }
}

/// The float64 sums of one tensor pair over its finite pairs, the material of ``GroupChange``.
struct PairSums: Sendable {
    var finitePairs = 0
    var sumA2 = 0.0
    var sumB2 = 0.0
    var sumAB = 0.0
    var sumD2 = 0.0
    var maxAbs = 0.0

    init() {}

    init(_ acc: PairAccumulator) {
        (finitePairs, sumA2, sumB2, sumAB, sumD2, maxAbs) = (acc.finitePairs, acc.sumA2, acc.sumB2, acc.sumAB, acc.sumD2, acc.maxAbs)
    }

    mutating func add(_ o: PairSums) {
        finitePairs += o.finitePairs
        sumA2 += o.sumA2
        sumB2 += o.sumB2
        sumAB += o.sumAB
        sumD2 += o.sumD2
        maxAbs = max(maxAbs, o.maxAbs)
    }
}

extension GroupChange {
    /// One tensor's part in the grouping: its name and, when compared value by value, its sums.
    struct Member {
        var name: String
        var identical: Bool
        var sums: PairSums?
    }

    init(prefix: String?, kind: LayerKind?, members: [Member]) {
        var total = PairSums()
        var changed = 0, elements = 0, anyFinite = false
        for sums in members.compactMap(\.sums) {
            total.add(sums)
            changed += 1
            elements += sums.finitePairs
            anyFinite = anyFinite || sums.finitePairs > 0
        }
        self.init(prefix: prefix, kind: kind, tensors: members.count, changed: changed, elements: elements)
        if changed == 0 {
            // Every tensor byte-identical (or without a float view): nothing moved.
            if !members.isEmpty && members.allSatisfy(\.identical) {
                (relativeL2, cosine, sqnrDB, maxAbs) = (0, 1, .infinity, 0)
            }
            return
        }
        guard anyFinite else { return }
        maxAbs = total.maxAbs
        relativeL2 = total.sumD2 == 0 ? 0 : (total.sumA2 == 0 ? .infinity : (total.sumD2 / total.sumA2).squareRoot())
        cosine = total.sumA2 > 0 && total.sumB2 > 0 ? total.sumAB / (total.sumA2 * total.sumB2).squareRoot() : nil
        sqnrDB = total.sumD2 == 0 ? .infinity : 10 * log10(total.sumA2 / total.sumD2)
    }

    init(prefix: String?, kind: LayerKind?, tensors: Int, changed: Int, elements: Int) {
        self.init(
            prefix: prefix, kind: kind, tensors: tensors, changed: changed, elements: elements,
            relativeL2: nil, cosine: nil, sqnrDB: nil, maxAbs: nil)
    }

    /// The layer totals, in order of first appearance; the kind totals, in ``LayerKind`` order;
    /// and the kind-within-layer totals, layer by layer.
    static func groups(of members: [Member]) -> (layers: [GroupChange], kinds: [GroupChange], layerKinds: [GroupChange]) {
        var layerOrder: [String] = []
        var byLayer: [String: [Member]] = [:]
        var byKind: [LayerKind: [Member]] = [:]
        var byLayerKind: [String: [LayerKind: [Member]]] = [:]
        for member in members {
            let prefix = LayerGrouping.prefix(of: member.name)
            let kind = LayerKind.of(member.name)
            if byLayer[prefix] == nil { layerOrder.append(prefix) }
            byLayer[prefix, default: []].append(member)
            byKind[kind, default: []].append(member)
            byLayerKind[prefix, default: [:]][kind, default: []].append(member)
        }
        let layers = layerOrder.map { GroupChange(prefix: $0, kind: nil, members: byLayer[$0]!) }
        let kinds = byKind.keys.sorted().map { GroupChange(prefix: nil, kind: $0, members: byKind[$0]!) }
        let layerKinds = layerOrder.flatMap { prefix in
            byLayerKind[prefix]!.keys.sorted().map { GroupChange(prefix: prefix, kind: $0, members: byLayerKind[prefix]![$0]!) }
        }
        return (layers, kinds, layerKinds)
    }
}
