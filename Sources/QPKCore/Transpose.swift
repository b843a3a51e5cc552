/// Cache-blocked matrix transposition, for tensors quantized along their leading axes
/// (``QuantizationAxis/leading``).
public enum Transpose {
    /// The side of the square tiles copied at once: 32×32 floats (4 KiB) stay in L1 both ways.
    static let tile = 32

    /// Writes the transpose of the row-major `rows × columns` matrix `source` into `destination`
    /// (row-major `columns × rows`).
    /// - Precondition: both buffers hold at least `rows · columns` elements and do not overlap.
    public static func matrix<T>(
        _ source: UnsafeBufferPointer<T>, rows: Int, columns: Int, into destination: UnsafeMutableBufferPointer<T>
    ) {
        precondition(source.count >= rows * columns && destination.count >= rows * columns,
                     "Transpose: buffers smaller than \(rows) × \(columns)")
        guard let src = source.baseAddress, let dst = destination.baseAddress else { return }
        var r0 = 0
        while r0 < rows {
            let r1 = min(r0 + tile, rows)
            var c0 = 0
            while c0 < columns {
                let c1 = min(c0 + tile, columns)
                for r in r0..<r1 {
                    for c in c0..<c1 {
                        (dst + (c * rows + r)).initialize(to: src[r * columns + c])
                    }
                }
                c0 = c1
            }
            r0 = r1
        }
    }
}
