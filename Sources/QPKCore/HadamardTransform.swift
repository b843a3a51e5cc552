/// The random-sign block Walsh–Hadamard rotation of ``WeightTransform`` (spec/qpk-format.md §5.6),
/// in the exact order of operations the spec defines, so that every reader computes the same f32
/// values.
///
/// For a row `x` of `C` values and block size `B` (a power of two dividing `C`), the block
/// transform `x·H` runs, for each block of `B` consecutive columns, the fast Walsh–Hadamard
/// butterflies `h = 1, 2, 4, …, B/2` — for every `i` in `0, 2h, 4h, …` and `j` in `i ..< i+h`:
/// `(x[j], x[j+h]) ← (x[j] + x[j+h], x[j] − x[j+h])` — then multiplies every value by
/// `s_B = f32(1/√B)` (`1/√B` evaluated in binary64, rounded to binary32). The sign step `·D`
/// negates column `c` where bit `c` of the signs is set. Writers compute `x·D·H` (signs first),
/// readers `x̂·H·D` (signs last); `H·H = I` and `D·D = I` make one the inverse of the other.
public enum HadamardTransform {
    /// `s_B`: `1/√B` evaluated in binary64, rounded to the nearest binary32.
    public static func scale(blockSize: Int) -> Float {
        Float(1 / Double(blockSize).squareRoot())
    }

    /// Whether column `column` has sign −1: bit `column mod 8` of byte `column / 8` (§5.2 order).
    @inline(__always)
    public static func isNegative(_ signs: [UInt8], column: Int) -> Bool {
        signs[column >> 3] >> UInt8(column & 7) & 1 == 1
    }

    /// `x·H` in place for one row of `columns` values: butterflies per block, then the scale.
    public static func blockTransform(_ row: UnsafeMutablePointer<Float>, columns: Int, blockSize: Int) {
        let scale = scale(blockSize: blockSize)
        var h = 1
        while h < blockSize {
            var i = 0
            while i < columns {  // the blocks are contiguous: pairs (j, j+h) never cross one
                for j in i..<(i + h) {
                    let a = row[j], b = row[j + h]
                    row[j] = a + b
                    row[j + h] = a - b
                }
                i += 2 * h
            }
            h *= 2
        }
        for c in 0..<columns { row[c] *= scale }
    }

    /// Negates the columns whose sign bit is set, in one row.
    @inline(__always)
    static func applySigns(_ row: UnsafeMutablePointer<Float>, columns: Int, signs: [UInt8]) {
        for c in 0..<columns where isNegative(signs, column: c) { row[c] = -row[c] }
    }

    /// `M·D·H` in place, for every row of the row-major `rows × columns` matrix: what the codes
    /// of a transformed tensor encode.
    public static func forward(
        _ matrix: UnsafeMutableBufferPointer<Float>, rows: Int, columns: Int, blockSize: Int, signs: [UInt8]
    ) {
        guard let base = matrix.baseAddress, columns > 0 else { return }
        for r in 0..<rows {
            let row = base + r * columns
            applySigns(row, columns: columns, signs: signs)
            blockTransform(row, columns: columns, blockSize: blockSize)
        }
    }

    /// `M̃·H·D` in place, for every row: the tensor matrix from its dequantized rotated one.
    public static func inverse(
        _ matrix: UnsafeMutableBufferPointer<Float>, rows: Int, columns: Int, blockSize: Int, signs: [UInt8]
    ) {
        guard let base = matrix.baseAddress, columns > 0 else { return }
        for r in 0..<rows {
            let row = base + r * columns
            blockTransform(row, columns: columns, blockSize: blockSize)
            applySigns(row, columns: columns, signs: signs)
        }
    }

    /// Deterministic signs for a tensor called `name` with `columns` columns: `ceil(columns/8)`
    /// bytes taken little-endian from SplitMix64 (Steele et al. 2014) seeded with the 64-bit
    /// FNV-1a hash of the UTF-8 name, unused high bits of the last byte cleared. Same name, same
    /// signs: a conversion writes the same bytes every time. Readers never recompute them; the
    /// file stores them (`transform_signs`).
    public static func signs(columns: Int, name: String) -> [UInt8] {
        var state: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in name.utf8 {
            state ^= UInt64(byte)
            state = state &* 0x0000_0100_0000_01B3
        }
        let count = (columns + 7) / 8
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count + 8)
        var generator = SplitMix64(seed: state)
        while bytes.count < count {
            let z = generator.next()
            for k in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: z >> (8 * UInt64(k)))) }
        }
        bytes.removeLast(bytes.count - count)
        if columns % 8 != 0, !bytes.isEmpty { bytes[count - 1] &= UInt8((1 << (columns % 8)) - 1) }
        return bytes
    }
}
