import Foundation

@testable import Quantize
import QPKCore

/// A seeded SplitMix64 generator, so property tests are reproducible.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A standard normal sample (Box–Muller).
    mutating func gaussian() -> Float {
        let u = Double.random(in: Double.ulpOfOne..<1, using: &self)
        let v = Double.random(in: 0..<1, using: &self)
        return Float((-2 * log(u)).squareRoot() * cos(2 * Double.pi * v))
    }

    /// `count` values like a transformer weight: normal with a few heavy-tailed spikes.
    mutating func weights(_ count: Int, sigma: Float = 0.05) -> [Float] {
        (0..<count).map { _ in
            let x = gaussian() * sigma
            return Double.random(in: 0..<1, using: &self) < 0.01 ? x * 8 : x
        }
    }
}

func dequantized(_ tensor: QuantizedTensor) throws -> [Float] {
    try [Float](unsafeUninitializedCapacity: tensor.info.elementCount) { buffer, count in
        try Dequantizer.dequantize(tensor, into: buffer)
        count = tensor.info.elementCount
    }
}

func unpackedCodes(_ tensor: QuantizedTensor) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: tensor.info.elementCount)
    tensor.codes.withUnsafeBufferPointer { packed in
        out.withUnsafeMutableBufferPointer {
            BitPacking.unpack(packed, bits: tensor.layout.bits, count: tensor.info.elementCount, into: $0)
        }
    }
    return out
}

func matrix(_ rows: Int, _ columns: Int, name: String = "w") -> TensorInfo {
    TensorInfo(name: name, dtype: .f32, shape: [rows, columns])
}
