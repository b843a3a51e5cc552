import QPKCore

/// The quantized tensor layouts of the runtimes people run models in, written into a Hugging Face
/// model folder (spec/runtime-layouts.md).
///
/// Both store a linear layer `base.weight` of shape `[out, in]` as packed integer codes with
/// per-group parameters along the input dimension; neither can hold outliers, so a layout export
/// quantizes without them.
public enum RuntimeLayout: String, Sendable, CaseIterable, Codable {
    /// MLX affine (`mlx.core.quantize`): `base.weight` uint32 `[out, in·bits/32]`, `base.scales`
    /// and `base.biases` `[out, in/group]` in the weight's float dtype; `w = scale·q + bias`.
    case mlx
    /// GPTQ (AutoGPTQ / GPTQModel / transformers): `base.qweight` int32 `[in·bits/32, out]`,
    /// `base.qzeros` int32 `[in/group, out·bits/32]`, `base.scales` fp16 `[in/group, out]`,
    /// `base.g_idx` int32 `[in]`; `w = scale·(q − zero)`.
    case gptq

    /// The bit widths the layout stores.
    public var supportedBits: [Int] {
        switch self {
        case .mlx: [2, 3, 4, 8]
        case .gptq: [2, 3, 4, 8]
        }
    }

    /// The group sizes the layout's runtimes accept.
    public var supportedGroupSizes: [Int] {
        switch self {
        case .mlx: [32, 64, 128]
        case .gptq: [32, 64, 128, 256]
        }
    }

    /// The module path of a weight tensor: `model.layers.0.mlp.up_proj` for
    /// `model.layers.0.mlp.up_proj.weight`, or `nil` for a name that does not end in `.weight`.
    public static func modulePath(of name: String) -> String? {
        name.hasSuffix(".weight") ? String(name.dropLast(".weight".count)) : nil
    }
}

/// Packs unsigned codes into 32-bit little-endian words as one LSB-first bit stream: code `i`
/// occupies stream bits `[i·bits, (i+1)·bits)`, and stream bit `k` is bit `k mod 32` of word
/// `k / 32`. This is MLX's and GPTQ's packing, for every width (3-bit codes straddle words).
public enum WordPacking {
    /// Appends the words of `codes` to `words`.
    /// - Precondition: every code is below `2^bits` and `codes.count · bits` is a multiple of 32.
    public static func pack(_ codes: some Collection<UInt32>, bits: Int, into words: inout [UInt32]) {
        var accumulator: UInt64 = 0
        var filled = 0
        for code in codes {
            accumulator |= UInt64(code) << UInt64(filled)
            filled += bits
            if filled >= 32 {
                words.append(UInt32(truncatingIfNeeded: accumulator))
                accumulator >>= 32
                filled -= 32
            }
        }
        precondition(filled == 0, "WordPacking: \(codes.count) codes of \(bits) bits do not fill whole words")
    }

    /// The `count` codes of `bits` bits starting at code `first` of the stream in `words`.
    public static func unpack(_ words: UnsafeBufferPointer<UInt32>, bits: Int, first: Int, count: Int) -> [UInt32] {
        var codes = [UInt32](repeating: 0, count: count)
        let mask: UInt64 = (1 << UInt64(bits)) - 1
        for i in 0..<count {
            let bit = (first + i) * bits
            let word = bit / 32, shift = bit % 32
            var value = UInt64(words[word]) >> UInt64(shift)
            if shift + bits > 32 { value |= UInt64(words[word + 1]) << UInt64(32 - shift) }
            codes[i] = UInt32(value & mask)
        }
        return codes
    }
}
