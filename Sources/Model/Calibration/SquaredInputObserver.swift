import QPKCore

/// A ``LinearInputObserver`` that sums, for every linear layer, the squares of its input per
/// column and counts the rows: the statistics of llama.cpp's importance matrix (`in_sum2` and
/// `counts`), whose ratio is the `E[x_j²]` that weights each input column's quantization error.
///
/// Unlike ``HessianObserver`` it keeps `d` doubles per input, not `d²`, so it observes every
/// block of a model in one forward pass. Layers that read the same input (query, key, value) share
/// one sum. Padding rows (row mask 0) are skipped.
public final class SquaredInputObserver: LinearInputObserver {
    /// Σ x² per column, keyed by the first name of each input's consumers.
    private var sums: [String: [Double]] = [:]
    private var rows: [String: Int] = [:]
    /// Layer name → the key of the sum holding its input.
    public private(set) var keys: [String: String] = [:]

    public init() {}

    public func observe(_ input: LinearInput) {
        guard let key = input.layers.first else { return }
        for layer in input.layers { keys[layer] = key }
        let d = input.values.columns
        var sum = sums[key] ?? [Double](repeating: 0, count: d)
        guard sum.count == d else { return }
        var counted = 0
        input.values.values.withUnsafeBufferPointer { x in
            sum.withUnsafeMutableBufferPointer { s in
                for r in 0..<input.values.rows where input.rowMask.isEmpty || input.rowMask[r] != 0 {
                    let row = x.baseAddress! + r * d
                    for j in 0..<d {
                        let v = Double(row[j])
                        s[j] += v * v
                    }
                    counted += 1
                }
            }
        }
        sums[key] = sum
        rows[key, default: 0] += counted
    }

    /// The layer names seen, in name order.
    public var layers: [String] { keys.keys.sorted() }

    /// Σ x² per input column of layer `name` and the number of rows summed.
    public func statistics(of name: String) -> (sumOfSquares: [Double], rows: Int)? {
        guard let key = keys[name], let sum = sums[key] else { return nil }
        return (sum, rows[key] ?? 0)
    }
}
