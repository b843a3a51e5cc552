import QPKCore

/// The 256-value super-blocks Q4_K and Q6_K (spec/gguf.md §5–§6).
///
/// Both store one fp16 super-scale (and, for Q4_K, a super-minimum) plus small integer
/// sub-scales. The search runs in three steps:
/// 1. each sub-block's float scale (and minimum) by the block searches of the 32-value types;
/// 2. the super-scale from the largest sub-scale (ggml's rule), the sub-scales rounded to it;
///    then super-scales ×{0.97, 1, 1.03} (Q4_K) or ×{0.99, 1, 1.01} (Q6_K), and for every
///    sub-block its integer scale (and minimum) ±1, each judged by the sub-block's decoded error;
/// 3. the whole sequence once more from the sub-blocks' plain min-max (Q4_K) or absmax (Q6_K)
///    scales — the simple rule — and from the sub-scales of the weighted searches ggml's
///    reference quantizers run (``ggmlSubBlockSearch(_:)``, ``ggmlSymmetricSearch(_:)``),
///    keeping whichever super-block decodes with the least error.
enum GGMLKQuantBlocks {
    typealias A = GGMLArithmetic

    // MARK: Q4_K

    /// One Q4_K sub-block's choice: 6-bit scale and minimum indices and its error.
    struct SubChoice {
        var scale: Int
        var minimum: Int
        var error: Float
    }

    /// Q4_K: fp16 d, fp16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles;
    /// `x̂ = (d·sc)·q − (dmin·m)` per 32-value sub-block.
    static func q4_K(_ x: UnsafePointer<Float>, _ out: UnsafeMutableRawPointer) {
        var searched: [(scale: Float, minimum: Float)] = []
        var simple: [(scale: Float, minimum: Float)] = []
        for sub in 0..<8 {
            let p = x + 32 * sub
            var lo = p[0], hi = p[0]
            for i in 1..<32 {
                lo = min(lo, p[i])
                hi = max(hi, p[i])
            }
            lo = min(lo, 0)
            simple.append(((hi - lo) / 15, -lo))
            searched.append(searchSubBlock(p, lo: lo, hi: hi))
        }
        var best = q4KSuperBlock(x, subScales: simple)
        for subScales in [searched, (0..<8).map { ggmlSubBlockSearch(x + 32 * $0) }] {
            let candidate = q4KSuperBlock(x, subScales: subScales)
            if candidate.error < best.error { best = candidate }
        }
        A.storeHalf(best.d, out, 0)
        A.storeHalf(best.dmin, out, 2)
        let sc = best.choices.map(\.scale), mn = best.choices.map(\.minimum)
        for j in 0..<4 {
            out.storeBytes(of: UInt8(sc[j] & 63 | (sc[j + 4] >> 4) << 6), toByteOffset: 4 + j, as: UInt8.self)
            out.storeBytes(of: UInt8(mn[j] & 63 | (mn[j + 4] >> 4) << 6), toByteOffset: 8 + j, as: UInt8.self)
            out.storeBytes(of: UInt8(sc[j + 4] & 0xF | (mn[j + 4] & 0xF) << 4), toByteOffset: 12 + j, as: UInt8.self)
        }
        for sub in 0..<8 {
            let scale = best.d * Float(sc[sub]), minimum = best.dmin * Float(mn[sub])
            let inverse: Float = scale == 0 ? 0 : 1 / scale
            let c = sub >> 1, shift = 4 * (sub & 1)
            for l in 0..<32 {
                let q = UInt8(A.nearest((x[32 * sub + l] + minimum) * inverse, 0, 15))
                let offset = 16 + 32 * c + l
                let previous = shift == 0 ? 0 : out.load(fromByteOffset: offset, as: UInt8.self)
                out.storeBytes(of: previous | q << shift, toByteOffset: offset, as: UInt8.self)
            }
        }
    }

    /// A sub-block's float scale and (non-negative, subtracted) minimum, by the affine clipping
    /// search of Q4_1 without fp16 rounding, with the minimum kept ≤ 0 as ggml's layout needs.
    static func searchSubBlock(_ p: UnsafePointer<Float>, lo: Float, hi: Float) -> (scale: Float, minimum: Float) {
        var best = (scale: (hi - lo) / 15, minimum: -lo)
        guard hi > lo, (hi - lo).isFinite else { return best }
        var bestError = subBlockError(p, scale: best.scale, minimum: best.minimum)
        let range = hi - lo
        // The 48 clipped candidates do not depend on which of them wins: their errors are
        // computed eight at a time (``subBlockErrors``), then visited in order.
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 3 * 56) { scratch in
            let scales = scratch.baseAddress!, minimums = scales + 56, errors = scales + 112
            var count = 0
            for a in 0...6 {
                for b in 0...6 where a + b > 0 {
                    let l = min(lo + Float(a) / 32 * range, 0), h = hi - Float(b) / 32 * range
                    guard h > l else { continue }
                    scales[count] = (h - l) / 15
                    minimums[count] = -l
                    count += 1
                }
            }
            subBlockErrors(p, scales: scales, minimums: minimums, count: count, into: errors)
            for k in 0..<count where errors[k] < bestError {
                best = (scales[k], minimums[k])
                bestError = errors[k]
            }
        }
        // Two least-squares refits of (scale, offset) for the best candidate's codes, the offset
        // kept ≤ 0 (the stored minimum is subtracted).
        for _ in 0..<2 {
            let inverse: Float = best.scale == 0 ? 0 : 1 / best.scale
            var sq: Float = 0, sqq: Float = 0, sxq: Float = 0, sx: Float = 0
            for i in 0..<32 {
                let q = A.nearest((p[i] + best.minimum) * inverse, 0, 15)
                sq += q
                sqq += q * q
                sxq += p[i] * q
                sx += p[i]
            }
            let det = 32 * sqq - sq * sq
            guard det > 0 else { break }
            var scale = (32 * sxq - sq * sx) / det
            var offset = (sx - scale * sq) / 32
            if offset > 0 {
                offset = 0
                scale = sxq / sqq
            }
            let e = subBlockError(p, scale: scale, minimum: -offset)
            guard scale > 0, e < bestError else { break }
            best = (scale, -offset)
            bestError = e
        }
        return best
    }

    /// The sub-block search of ggml's reference Q4_K quantizer (`make_qkx2_quants` with 20 steps),
    /// written from its description: weights `w = rms(x) + |x|`; start from min-max (minimum ≤ 0);
    /// for inverse scales `(15 − 1 + 0.1·k) / (max − min)`, k = 0…20, take the nearest codes and
    /// solve the weighted least squares for scale and minimum (minimum clamped to ≤ 0, then the
    /// scale refitted alone); keep the smallest weighted error.
    static func ggmlSubBlockSearch(_ p: UnsafePointer<Float>) -> (scale: Float, minimum: Float) {
        var lo = p[0], hi = p[0], sumX2: Float = 0
        for i in 0..<32 {
            lo = min(lo, p[i])
            hi = max(hi, p[i])
            sumX2 += p[i] * p[i]
        }
        let rms = (sumX2 / 32).squareRoot()
        if lo > 0 { lo = 0 }
        guard hi > lo, (hi - lo).isFinite else { return (0, -lo) }
        var sumW: Float = 0, sumX: Float = 0
        for i in 0..<32 {
            let w = rms + abs(p[i])
            sumW += w
            sumX += w * p[i]
        }
        func weightedError(scale: Float, minimum: Float, inverse: Float, origin: Float) -> Float {
            var e: Float = 0
            for i in 0..<32 {
                let q = A.nearest(inverse * (p[i] - origin), 0, 15)
                let r = scale * q + minimum - p[i]
                e += (rms + abs(p[i])) * r * r
            }
            return e
        }
        var scale = (hi - lo) / 15, minimum = lo
        var best = weightedError(scale: scale, minimum: minimum, inverse: 15 / (hi - lo), origin: lo)
        // The 21 steps do not depend on each other: eight run side by side (lane = step), each
        // lane with the scalar operations in the scalar order, then the steps are visited in order.
        let top = SIMD8<Float>(repeating: 15), low = SIMD8<Float>()
        let magic = SIMD8<Float>(repeating: 12_582_912)
        @inline(__always) func codes(_ inverse: SIMD8<Float>, _ i: Int) -> SIMD8<Float> {
            var q = inverse * SIMD8<Float>(repeating: p[i] - lo)
            q.replace(with: low, where: .!(q .>= low))
            q.replace(with: top, where: q .> top)
            return (q + magic) - magic
        }
        var start = 0
        while start <= 20 {
            let lanes = min(8, 21 - start)
            var inverse = SIMD8<Float>(repeating: 1)
            for j in 0..<lanes { inverse[j] = (-1 + 0.1 * Float(start + j) + 15) / (hi - lo) }
            var sumL = SIMD8<Float>(), sumL2 = SIMD8<Float>(), sumXL = SIMD8<Float>()
            for i in 0..<32 {
                let q = codes(inverse, i), w = SIMD8<Float>(repeating: rms + abs(p[i]))
                sumL += w * q
                sumL2 += w * q * q
                sumXL += w * q * SIMD8<Float>(repeating: p[i])
            }
            var candidateScale = SIMD8<Float>(), candidateMinimum = SIMD8<Float>()
            var usable: UInt8 = 0
            for j in 0..<lanes {
                let det = sumW * sumL2[j] - sumL[j] * sumL[j]
                guard det > 0 else { continue }
                usable |= 1 << UInt8(j)
                var cs = (sumW * sumXL[j] - sumX * sumL[j]) / det
                var cm = (sumL2[j] * sumX - sumL[j] * sumXL[j]) / det
                if cm > 0 {
                    cm = 0
                    cs = sumXL[j] / sumL2[j]
                }
                candidateScale[j] = cs
                candidateMinimum[j] = cm
            }
            // The codes stay those of this step's inverse scale, as in the reference.
            var e = SIMD8<Float>()
            for i in 0..<32 {
                let q = codes(inverse, i)
                let r = candidateScale * q + candidateMinimum - SIMD8<Float>(repeating: p[i])
                e += SIMD8<Float>(repeating: rms + abs(p[i])) * r * r
            }
            for j in 0..<lanes where usable & (1 << UInt8(j)) != 0 && e[j] < best {
                best = e[j]
                scale = candidateScale[j]
                minimum = candidateMinimum[j]
            }
            start += 8
        }
        return (max(scale, 0), -minimum)
    }

    @inline(__always) static func subBlockError(_ p: UnsafePointer<Float>, scale: Float, minimum: Float) -> Float {
        let inverse: Float = scale == 0 ? 0 : 1 / scale
        var e: Float = 0
        for i in 0..<32 {
            let q = A.nearest((p[i] + minimum) * inverse, 0, 15)
            let r = p[i] - (scale * q - minimum)
            e += r * r
        }
        return e
    }

    /// ``subBlockError(_:scale:minimum:)`` of `count` (scale, minimum) pairs, eight per pass over
    /// the sub-block: lane `k` runs the scalar operations in the scalar order for pair `k`, so each
    /// error is bit-identical to the one-pair sum. `scales` and `minimums` are read in groups of
    /// eight, padded here with harmless values.
    static func subBlockErrors(
        _ p: UnsafePointer<Float>, scales: UnsafeMutablePointer<Float>, minimums: UnsafeMutablePointer<Float>,
        count: Int, into errors: UnsafeMutablePointer<Float>
    ) {
        var start = 0
        while start < count {
            var s = SIMD8<Float>(repeating: 1), m = SIMD8<Float>()
            let lanes = min(8, count - start)
            for k in 0..<lanes {
                s[k] = scales[start + k]
                m[k] = minimums[start + k]
            }
            let e = subBlockErrors(p, scales: s, minimums: m)
            for k in 0..<lanes { errors[start + k] = e[k] }
            start += 8
        }
    }

    @inline(__always) static func subBlockErrors(
        _ p: UnsafePointer<Float>, scales: SIMD8<Float>, minimums: SIMD8<Float>
    ) -> SIMD8<Float> {
        var inverse = SIMD8<Float>(repeating: 1) / scales
        inverse.replace(with: SIMD8<Float>(), where: scales .== SIMD8<Float>())
        let low = SIMD8<Float>(), top = SIMD8<Float>(repeating: 15)
        let magic = SIMD8<Float>(repeating: 12_582_912)
        var e = SIMD8<Float>()
        for i in 0..<32 {
            let x = SIMD8<Float>(repeating: p[i])
            var q = (x + minimums) * inverse
            q.replace(with: low, where: .!(q .>= low))
            q.replace(with: top, where: q .> top)
            q = (q + magic) - magic
            let r = x - (scales * q - minimums)
            e += r * r
        }
        return e
    }

    /// The best super-block for the given float sub-scales and minimums (steps 2 of the search).
    static func q4KSuperBlock(
        _ x: UnsafePointer<Float>, subScales: [(scale: Float, minimum: Float)]
    ) -> (d: Float, dmin: Float, choices: [SubChoice], error: Float) {
        let maxScale = subScales.map(\.scale).max() ?? 0
        let maxMinimum = subScales.map(\.minimum).max() ?? 0
        var best: (d: Float, dmin: Float, choices: [SubChoice], error: Float)?
        for f in [Float(1), 0.97, 1.03] {
            let d = A.half(maxScale / 63 * f), dmin = A.half(maxMinimum / 63)
            var choices: [SubChoice] = []
            var total: Float = 0
            for sub in 0..<8 {
                let target = subScales[sub]
                let sc0 = d == 0 ? 0 : Int(A.nearest(target.scale / d, 0, 63))
                let m0 = dmin == 0 ? 0 : Int(A.nearest(target.minimum / dmin, 0, 63))
                var choice = SubChoice(scale: sc0, minimum: m0, error: .infinity)
                // The (up to) nine neighbours, evaluated together, then visited in order.
                withUnsafeTemporaryAllocation(of: Float.self, capacity: 3 * 16) { scratch in
                    let scales = scratch.baseAddress!, minimums = scales + 16, errors = scales + 32
                    var count = 0
                    for sc in max(0, sc0 - 1)...min(63, sc0 + 1) {
                        for m in max(0, m0 - 1)...min(63, m0 + 1) {
                            scales[count] = d * Float(sc)
                            minimums[count] = dmin * Float(m)
                            count += 1
                        }
                    }
                    subBlockErrors(x + 32 * sub, scales: scales, minimums: minimums, count: count, into: errors)
                    var k = 0
                    for sc in max(0, sc0 - 1)...min(63, sc0 + 1) {
                        for m in max(0, m0 - 1)...min(63, m0 + 1) {
                            let e = errors[k]
                            k += 1
                            if e < choice.error || (sc == sc0 && m == m0 && e <= choice.error) {
                                choice = SubChoice(scale: sc, minimum: m, error: e)
                            }
                        }
                    }
                }
                choices.append(choice)
                total += choice.error
            }
            if best == nil || total < best!.error { best = (d, dmin, choices, total) }
        }
        return best!
    }

    // MARK: Q6_K

    /// Q6_K: 128 bytes ql, 64 bytes qh, 16 signed 8-bit scales, fp16 d;
    /// `x̂ = (d·sc)·(q − 32)` per 16-value sub-block.
    static func q6_K(_ x: UnsafePointer<Float>, _ out: UnsafeMutableRawPointer) {
        var searched: [Float] = [], simple: [Float] = []
        for sub in 0..<16 {
            let p = x + 16 * sub
            simple.append(A.signedAbsMax(p, 16) / -32)
            searched.append(A.bestSymmetricScale(p, 16, lo: -32, hi: 31, roundToHalf: false))
        }
        var best = q6KSuperBlock(x, subScales: simple)
        for subScales in [searched, (0..<16).map { ggmlSymmetricSearch(x + 16 * $0) }] {
            let candidate = q6KSuperBlock(x, subScales: subScales)
            if candidate.error < best.error { best = candidate }
        }
        A.storeHalf(best.d, out, 208)
        for sub in 0..<16 { out.storeBytes(of: Int8(best.scales[sub]), toByteOffset: 192 + sub, as: Int8.self) }
        out.initializeMemory(as: UInt8.self, repeating: 0, count: 192)
        for i in 0..<256 {
            let scale = best.d * Float(best.scales[i >> 4])
            let c = scale == 0 ? 0 : Int(A.nearest(x[i] * (1 / scale), -32, 31))
            let q = c + 32
            let h = i >> 7, s = (i >> 5) & 3, l = i & 31
            let qlOffset = 64 * h + 32 * (s & 1) + l
            let qlShift = 4 * (s >> 1)
            let ql = out.load(fromByteOffset: qlOffset, as: UInt8.self) | UInt8(q & 0xF) << qlShift
            out.storeBytes(of: ql, toByteOffset: qlOffset, as: UInt8.self)
            let qhOffset = 128 + 32 * h + l
            let qh = out.load(fromByteOffset: qhOffset, as: UInt8.self) | UInt8(q >> 4) << (2 * s)
            out.storeBytes(of: qh, toByteOffset: qhOffset, as: UInt8.self)
        }
    }

    /// The sub-block search of ggml's reference Q6_K quantizer (`make_qx_quants`, 16 values,
    /// codes in [−32, 31], weights x²), written from its description: inverse scales
    /// `−(32 + 0.1·k)/m` for k = −9…9 (m the signed absmax), each with the weighted
    /// least-squares scale `Σ w·x·c / Σ w·c²` of its codes, keeping the largest `(Σ w·x·c)² / Σ w·c²`.
    static func ggmlSymmetricSearch(_ p: UnsafePointer<Float>) -> Float {
        let m = A.signedAbsMax(p, 16)
        guard m != 0, m.isFinite else { return 0 }
        var scale: Float = 0, best: Float = -1
        for k in -9...9 {
            let inverse = -(32 + 0.1 * Float(k)) / m
            var sumXL: Float = 0, sumL2: Float = 0
            for i in 0..<16 {
                let c = A.nearest(inverse * p[i], -32, 31), w = p[i] * p[i]
                sumXL += w * p[i] * c
                sumL2 += w * c * c
            }
            guard sumL2 > 0 else { continue }
            if best < 0 || sumXL * sumXL > best * sumL2 {
                scale = sumXL / sumL2
                best = scale * sumXL
            }
        }
        return scale
    }

    static func q6KSuperBlock(_ x: UnsafePointer<Float>, subScales: [Float]) -> (d: Float, scales: [Int], error: Float) {
        var maxScale: Float = 0
        for s in subScales where abs(s) > abs(maxScale) { maxScale = s }
        var best: (d: Float, scales: [Int], error: Float)?
        for f in [Float(1), 0.99, 1.01] {
            let d = A.half(maxScale / -128 * f)
            var scales: [Int] = []
            var total: Float = 0
            for sub in 0..<16 {
                let sc0 = d == 0 ? 0 : Int(A.nearest(subScales[sub] / d, -128, 127))
                var chosen = sc0, chosenError = Float.infinity
                for sc in max(-128, sc0 - 1)...min(127, sc0 + 1) {
                    let e = A.symmetricError(x + 16 * sub, 16, scale: d * Float(sc), lo: -32, hi: 31)
                    if e < chosenError || (sc == sc0 && e <= chosenError) {
                        chosen = sc
                        chosenError = e
                    }
                }
                scales.append(chosen)
                total += chosenError
            }
            if best == nil || total < best!.error { best = (d, scales, total) }
        }
        return best!
    }
}
