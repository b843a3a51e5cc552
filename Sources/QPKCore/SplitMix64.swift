/// SplitMix64 (Steele, Lea and Flood 2014, "Fast splittable pseudorandom number generators"): a
/// tiny, fully specified generator. qpk uses it wherever output depends on random draws (the
/// Hadamard transform's signs, random calibration tokens), so the same command writes the same
/// bytes on every machine and Swift version, which the standard library's generator, neither
/// seedable nor specified, cannot promise.
///
/// Each draw adds `0x9E3779B97F4A7C15` to the state and mixes it:
/// `z ← (z ⊕ z≫30)·0xBF58476D1CE4E5B9`, `z ← (z ⊕ z≫27)·0x94D049BB133111EB`, `z ⊕ z≫31`.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
