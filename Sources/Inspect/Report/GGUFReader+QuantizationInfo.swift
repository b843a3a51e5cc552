import Formats
import QPKCore
import Quantize

/// GGUF tensor infos name each tensor's ggml type, so `inspect` shows block-quantized tensors
/// (Q4_0, Q4_K, IQ2_XXS, …) with their type, block size and stored bits per weight without
/// decoding them. Plain tensors (F32, F16, …) report no quantization.
extension GGUFReader: QuantizationInfoProviding {
    public func quantizationSummary(for name: String) -> QuantizationSummary? {
        guard let entry = entry(named: name), entry.type.isBlockQuantized else { return nil }
        let parameters = entry.info.elementCount
        return QuantizationSummary(
            bits: entry.type.codeBits, groupSize: entry.type.blockSize,
            scheme: entry.type.hasMinimum ? .affine : .symmetric, method: "ggml \(entry.type.name)",
            outlierKind: nil, outlierCount: 0,
            bitsPerWeight: parameters == 0 ? 0 : Double(entry.byteCount * 8) / Double(parameters),
            sqnrDB: nil, maxAbsError: nil, storedBytes: entry.byteCount)
    }

    public func storedTypeName(for name: String) -> String? {
        entry(named: name)?.type.name
    }
}
