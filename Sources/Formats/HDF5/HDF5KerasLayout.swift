import QPKCore

/// The Keras file layouts the HDF5 reader recognises, and the tensor order each implies.
///
/// HDF5 lists links alphabetically, so the order Keras saved weights in survives only in attributes:
/// - **Keras 2 `model.save`** (``keras2Model``): group `model_weights` carries `layer_names`; each
///   layer group carries `weight_names` (names relative to the layer group, e.g. `dense/kernel:0`,
///   whose `/` makes nested groups); `optimizer_weights` carries its own `weight_names`.
/// - **Keras 2 `save_weights`** (``keras2Weights``): the same `layer_names`/`weight_names` at the root.
/// - Long lists are split into `layer_names0`, `layer_names1`, … (and `weight_names0`, …), joined in order.
/// - **Keras 3 `.weights.h5`** (``keras3Weights``): `layers/<layer>/vars/<i>` and `optimizer/vars/<i>`,
///   ordered by path with numeric components compared as numbers (`vars/2` before `vars/10`).
///
/// Datasets the attributes do not name follow, in HDF5's (byte-wise) name order.
public enum KerasLayout: String, Sendable, Equatable, CaseIterable {
    case keras2Model
    case keras2Weights
    case keras3Weights

    /// Detects the layout and orders `names` (tensor names, without the leading `/`) accordingly.
    static func order(
        names: [String], attributes: [String: [String: HDF5Attribute]], groups: Set<String>
    ) -> (layout: KerasLayout?, names: [String]) {
        let available = Set(names)
        var ordered: [String] = []
        var seen = Set<String>()
        func take(_ name: String) {
            if available.contains(name), seen.insert(name).inserted { ordered.append(name) }
        }
        func rest() -> [String] { names.filter { !seen.contains($0) }.sorted(by: byteOrder) }

        func layerWalk(group: String) {
            let prefix = group == "/" ? "" : String(group.dropFirst()) + "/"
            for layer in joined(attributes[group], "layer_names") {
                let layerGroup = group == "/" ? "/" + layer : group + "/" + layer
                for weight in joined(attributes[layerGroup], "weight_names") {
                    take(prefix + layer + "/" + weight)
                }
            }
        }

        if groups.contains("/model_weights"), hasJoined(attributes["/model_weights"], "layer_names") {
            layerWalk(group: "/model_weights")
            for weight in joined(attributes["/optimizer_weights"], "weight_names") {
                take("optimizer_weights/" + weight)
            }
            return (.keras2Model, ordered + rest())
        }
        if hasJoined(attributes["/"], "layer_names") {
            layerWalk(group: "/")
            return (.keras2Weights, ordered + rest())
        }
        let isKeras3 = (groups.contains("/layers") || groups.contains("/optimizer"))
            && names.contains { name in
                let parts = name.split(separator: "/", omittingEmptySubsequences: false)
                return parts.count >= 2 && parts[parts.count - 2] == "vars" && parts.last!.allSatisfy(\.isASCIIDigit)
            }
        if isKeras3 {
            return (.keras3Weights, names.sorted(by: naturalPathOrder))
        }
        return (nil, names.sorted(by: byteOrder))
    }

    /// The strings of attribute `name`, or of `name0`, `name1`, … joined, on one object.
    static func joined(_ attributes: [String: HDF5Attribute]?, _ name: String) -> [String] {
        guard let attributes else { return [] }
        if let whole = attributes[name] { return whole.strings }
        var result: [String] = []
        var index = 0
        while let part = attributes["\(name)\(index)"] {
            result += part.strings
            index += 1
        }
        return result
    }

    private static func hasJoined(_ attributes: [String: HDF5Attribute]?, _ name: String) -> Bool {
        attributes?[name] != nil || attributes?["\(name)0"] != nil
    }

    /// HDF5's link order: plain byte-wise comparison of the UTF-8 names.
    static func byteOrder(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }

    /// Path order where all-digit components compare as numbers (`vars/2` < `vars/10`).
    static func naturalPathOrder(_ a: String, _ b: String) -> Bool {
        let left = a.split(separator: "/", omittingEmptySubsequences: false)
        let right = b.split(separator: "/", omittingEmptySubsequences: false)
        for (x, y) in zip(left, right) where x != y {
            if x.allSatisfy(\.isASCIIDigit), y.allSatisfy(\.isASCIIDigit), !x.isEmpty, !y.isEmpty {
                let xs = x.drop { $0 == "0" }, ys = y.drop { $0 == "0" }
                if xs.count != ys.count { return xs.count < ys.count }
                if xs != ys { return xs.utf8.lexicographicallyPrecedes(ys.utf8) }
                return x.count < y.count
            }
            return x.utf8.lexicographicallyPrecedes(y.utf8)
        }
        return left.count < right.count
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
