import Dispatch
import QPKCore

/// Encodes float rows as ggml blocks whose bytes follow ggml's layouts exactly (spec/gguf.md §5)
/// but whose in-block parameters come from an error-minimising search (spec/gguf.md §6).
///
/// Every search keeps ggml's own simple rule (e.g. Q4_0's `d = max / −8`) among its candidates
/// and judges each candidate by the squared error of exactly what a reader will decode (fp16
/// scales rounded, products in ggml's order), so no block is ever worse than ggml's rule makes
/// it. Codes are always the nearest for the stored parameters.
public enum GGMLBlockQuantizer {
    /// Encodes `values` (whole blocks, row after row) as `type` into `destination`.
    /// - Precondition: `values.count` is a multiple of `type.blockSize` and `destination` holds
    ///   `type.byteCount(elementCount: values.count)` bytes; `type` is F32, F16, BF16, Q8_0,
    ///   Q4_0, Q4_1, Q5_0, Q4_K, Q6_K or IQ4_NL.
    public static func encode(
        _ values: UnsafeBufferPointer<Float>, as type: GGMLType, into destination: UnsafeMutableRawBufferPointer
    ) {
        precondition(values.count % type.blockSize == 0)
        precondition(destination.count == type.byteCount(elementCount: values.count))
        guard values.count > 0, let x = values.baseAddress, let out = destination.baseAddress else { return }
        if let dtype = type.plainDType {
            FloatCodec.encode(values, as: dtype, into: destination)
            return
        }
        let block: @Sendable (UnsafePointer<Float>, UnsafeMutableRawPointer) -> Void
        switch type {
        case .q4_0: block = { GGMLSymmetricBlocks.q4_0($0, $1) }
        case .q5_0: block = { GGMLSymmetricBlocks.q5_0($0, $1) }
        case .q8_0: block = { GGMLSymmetricBlocks.q8_0($0, $1) }
        case .iq4_NL: block = { GGMLSymmetricBlocks.iq4_NL($0, $1) }
        case .q4_1: block = { GGMLAffineBlocks.q4_1($0, $1) }
        case .q4_K: block = { GGMLKQuantBlocks.q4_K($0, $1) }
        case .q6_K: block = { GGMLKQuantBlocks.q6_K($0, $1) }
        default: preconditionFailure("qpk does not encode \(type.name)")
        }
        // Blocks are independent: large tensors are cut into chunks encoded in parallel.
        let blocks = values.count / type.blockSize
        Parallel.forEachChunk(rows: blocks, work: type.blockSize * 16) { range in
            for b in range {
                block(x + b * type.blockSize, out + b * type.typeSize)
            }
        }
    }

    /// The types ``encode(_:as:into:)`` writes.
    public static let encodableTypes: Set<GGMLType> = [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q4_K, .q6_K, .iq4_NL]
}

/// Shared arithmetic of the block searches.
enum GGMLArithmetic {
    /// `x` rounded to fp16 and widened back, clamped to fp16's finite range (ggml stores scales
    /// as fp16; an infinite scale would decode to NaN).
    @inline(__always) static func half(_ x: Float) -> Float {
        let h = Float16(x)
        if h.isFinite { return Float(h) }
        if x.isNaN { return 0 }
        return x > 0 ? Float(Float16.greatestFiniteMagnitude) : -Float(Float16.greatestFiniteMagnitude)
    }

    @inline(__always) static func storeHalf(_ x: Float, _ p: UnsafeMutableRawPointer, _ offset: Int) {
        p.storeBytes(of: Float16(x).bitPattern.littleEndian, toByteOffset: offset, as: UInt16.self)
    }

    /// `t` rounded to the nearest integer in `[lo, hi]` (NaN goes to `lo`; ties to even).
    ///
    /// Clamped first, then rounded by adding and subtracting 1.5·2²³, which leaves the nearest
    /// integer for |t| < 2²² in one add and one subtract (`rounded()` is a libm call on baseline
    /// x86-64). Ties cost the same error either way, so the rounding of ties does not matter.
    @inline(__always) static func nearest(_ t: Float, _ lo: Float, _ hi: Float) -> Float {
        var v = t
        if !(v >= lo) { v = lo }
        if v > hi { v = hi }
        let magic: Float = 12_582_912
        return (v + magic) - magic
    }

    /// The squared error of `n` values under `x̂ = scale·c`, `c` the nearest integer in `[lo, hi]`.
    @inline(__always) static func symmetricError(
        _ x: UnsafePointer<Float>, _ n: Int, scale: Float, lo: Float, hi: Float
    ) -> Float {
        guard scale != 0 else {
            var e: Float = 0
            for i in 0..<n { e += x[i] * x[i] }
            return e
        }
        let inverse = 1 / scale
        var e: Float = 0
        for i in 0..<n {
            let c = nearest(x[i] * inverse, lo, hi)
            let r = x[i] - scale * c
            e += r * r
        }
        return e
    }

    /// The least-squares scale for the codes the current `scale` gives: `Σ x·c / Σ c²`.
    @inline(__always) static func refitScale(
        _ x: UnsafePointer<Float>, _ n: Int, scale: Float, lo: Float, hi: Float
    ) -> Float {
        guard scale != 0 else { return 0 }
        let inverse = 1 / scale
        var xc: Float = 0, cc: Float = 0
        for i in 0..<n {
            let c = nearest(x[i] * inverse, lo, hi)
            xc += x[i] * c
            cc += c * c
        }
        return cc > 0 ? xc / cc : scale
    }

    /// The value of largest magnitude, with its sign (the first one on ties, as ggml takes it).
    @inline(__always) static func signedAbsMax(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var amax: Float = 0, m: Float = 0
        for i in 0..<n where abs(x[i]) > amax {
            amax = abs(x[i])
            m = x[i]
        }
        return m
    }

    /// Grid factors around a reference scale: 0.70, 0.72, …, 1.10 (the reference itself is 1.0).
    static let scaleFactors: [Float] = (0...20).map { 0.70 + Float($0) * 0.02 }

    /// The best fp16 scale for symmetric codes `c ∈ [lo, hi]`, `x̂ = d·c`: candidates are the
    /// reference `d = m / lo` (m the signed absmax: ggml's rule), `m/lo·f` and `m/hi·f` over
    /// ``scaleFactors``, then two least-squares refits of the best; each judged after fp16
    /// rounding. The reference is judged first and replaced only by a strictly smaller error.
    /// - Parameter reference: ggml's scale, when it is not `m / lo` (Q8_0: `absmax / 127`).
    static func bestSymmetricScale(
        _ x: UnsafePointer<Float>, _ n: Int, lo: Float, hi: Float, reference: Float? = nil, roundToHalf: Bool = true
    ) -> Float {
        let m = signedAbsMax(x, n)
        @inline(__always) func stored(_ d: Float) -> Float { roundToHalf ? half(d) : d }
        guard m != 0, m.isFinite else { return stored(reference ?? m / lo) }
        var best = stored(reference ?? m / lo)
        var bestError = symmetricError(x, n, scale: best, lo: lo, hi: hi)
        @inline(__always) func consider(_ d: Float) {
            let s = stored(d)
            guard s != 0, s.isFinite else { return }
            let e = symmetricError(x, n, scale: s, lo: lo, hi: hi)
            if e < bestError {
                best = s
                bestError = e
            }
        }
        // The grid candidates do not depend on which of them wins: their errors are computed
        // eight at a time (``symmetricErrors``) and then visited in the order of `consider`.
        let gridCount = 2 * scaleFactors.count
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * gridCount + 8) { scratch in
            let scales = scratch.baseAddress!, errors = scales + gridCount + 8
            for (j, f) in scaleFactors.enumerated() {
                scales[2 * j] = stored(m / lo * f)
                scales[2 * j + 1] = stored(m / hi * f)
            }
            for k in gridCount..<(gridCount + 8) { scales[k] = 1 }
            var start = 0
            while start < gridCount {
                var lanes = SIMD8<Float>(repeating: 1)
                for k in 0..<8 {
                    let s = scales[start + k]
                    if s != 0, s.isFinite { lanes[k] = s }
                }
                let e = symmetricErrors(x, n, scales: lanes, lo: lo, hi: hi)
                for k in 0..<Swift.min(8, gridCount - start) { errors[start + k] = e[k] }
                start += 8
            }
            for k in 0..<gridCount {
                let s = scales[k]
                guard s != 0, s.isFinite else { continue }
                if errors[k] < bestError {
                    best = s
                    bestError = errors[k]
                }
            }
        }
        for _ in 0..<2 { consider(refitScale(x, n, scale: best, lo: lo, hi: hi)) }
        return best
    }

    /// ``symmetricError(_:_:scale:lo:hi:)`` of eight non-zero scales at once: lane `k` runs the
    /// same operations in the same element order for `scales[k]`, so each lane's sum is
    /// bit-identical to the one-scale sum.
    @inline(__always) static func symmetricErrors(
        _ x: UnsafePointer<Float>, _ n: Int, scales: SIMD8<Float>, lo: Float, hi: Float
    ) -> SIMD8<Float> {
        let inverse = SIMD8<Float>(repeating: 1) / scales
        let low = SIMD8<Float>(repeating: lo), high = SIMD8<Float>(repeating: hi)
        let magic = SIMD8<Float>(repeating: 12_582_912)
        var e = SIMD8<Float>()
        for i in 0..<n {
            let v = SIMD8<Float>(repeating: x[i])
            var t = v * inverse
            t.replace(with: low, where: .!(t .>= low))
            t.replace(with: high, where: t .> high)
            t = (t + magic) - magic
            let r = v - scales * t
            e += r * r
        }
        return e
    }
}
