import Foundation
import Kernels
import KernelsAVX2

/// Which build of the SIMD kernels (Sources/Kernels: ``Kernels/GroupKernel`` for the quantizer,
/// ``Kernels/PairKernel`` for `diff`) this process runs: the AVX2 one (twice the vector width)
/// when the CPU has AVX2, else the baseline one. Both give the same bits (Kernels/GroupKernel.swift),
/// so the choice changes speed only.
///
/// The environment variable `QPK_SIMD=baseline` forces the baseline build (for comparisons and
/// tests); `QPK_SIMD=avx2` asks for AVX2 and is ignored on a CPU without it.
public enum KernelDispatch {
    /// The instruction sets a kernel build may use.
    public enum InstructionSet: String, Sendable {
        case baseline
        case avx2
    }

    /// The build in use, decided once per process.
    public static let active: InstructionSet = {
        let cpuHasAVX2 = cpuFlags().contains("avx2")
        let wanted = ProcessInfo.processInfo.environment["QPK_SIMD"]
        return cpuHasAVX2 && wanted != InstructionSet.baseline.rawValue ? .avx2 : .baseline
    }()

    /// Whether the AVX2 build can run here.
    public static var avx2Available: Bool { cpuFlags().contains("avx2") }

    /// The CPU feature flags the kernel reports (Linux `/proc/cpuinfo`), which lists only what the
    /// kernel also enabled (AVX2 needs the OS to save the YMM registers); empty elsewhere.
    static func cpuFlags() -> Set<Substring> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":")
        else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " "))
    }

    /// ``Kernels/GroupKernel/extremes(_:count:)`` of the active build.
    @inline(__always)
    static func extremes(_ base: UnsafePointer<Float>, count: Int) -> (lo: Float, hi: Float, signedAbsMax: Float) {
        active == .avx2
            ? KernelsAVX2.GroupKernel.extremes(base, count: count)
            : Kernels.GroupKernel.extremes(base, count: count)
    }

    /// ``Kernels/GroupKernel/encode(_:count:codes:scale:zero:top:)`` of the active build.
    @inline(__always)
    static func encode(
        _ x: UnsafePointer<Float>, count: Int, codes: UnsafeMutablePointer<UInt8>, scale: Float, zero: Float, top: Float
    ) -> Kernels.GroupKernel.Measure {
        if active == .avx2 {
            let m = KernelsAVX2.GroupKernel.encode(x, count: count, codes: codes, scale: scale, zero: zero, top: top)
            return .init(signal: m.signal, noise: m.noise, worst: m.worst)
        }
        return Kernels.GroupKernel.encode(x, count: count, codes: codes, scale: scale, zero: zero, top: top)
    }

    /// ``Kernels/PairKernel/sums(_:_:count:offset:absolute:relative:equalNaN:)`` of the active build.
    public static func pairSums(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int, offset: Int,
        absolute: Double, relative: Double, equalNaN: Bool
    ) -> Kernels.PairKernel {
        guard active == .avx2 else {
            return Kernels.PairKernel.sums(
                a, b, count: count, offset: offset, absolute: absolute, relative: relative, equalNaN: equalNaN)
        }
        let s = KernelsAVX2.PairKernel.sums(
            a, b, count: count, offset: offset, absolute: absolute, relative: relative, equalNaN: equalNaN)
        var result = Kernels.PairKernel()
        result.finitePairs = s.finitePairs
        result.sumA2 = s.sumA2
        result.sumB2 = s.sumB2
        result.sumAB = s.sumAB
        result.sumD2 = s.sumD2
        result.sumAbs = s.sumAbs
        result.maxAbs = s.maxAbs
        result.allEqual = s.allEqual
        result.outOfTolerance = s.outOfTolerance
        result.nonFiniteMismatches = s.nonFiniteMismatches
        result.worst = s.worst
        return result
    }

    /// ``Kernels/CodebookKernel/weightedError`` of the active build, over a group's vectors.
    static func codebookError(
        _ values: UnsafeBufferPointer<SIMD8<Float>>, _ weights: UnsafeBufferPointer<SIMD8<Float>>, scale: Float,
        table: CodebookTable
    ) -> Float {
        table.withKernelArguments { first, midpoints, steps, thresholds in
            let (v, w, n) = (values.baseAddress!, weights.baseAddress!, values.count)
            return active == .avx2
                ? KernelsAVX2.CodebookKernel.weightedError(
                    values: v, weights: w, vectors: n, scale: scale, first: first, midpoints: midpoints, steps: steps,
                    thresholds: thresholds)
                : Kernels.CodebookKernel.weightedError(
                    values: v, weights: w, vectors: n, scale: scale, first: first, midpoints: midpoints, steps: steps,
                    thresholds: thresholds)
        }
    }

    /// ``Kernels/CodebookKernel/projection`` of the active build, over a group's vectors.
    static func codebookProjection(
        _ values: UnsafeBufferPointer<SIMD8<Float>>, _ weights: UnsafeBufferPointer<SIMD8<Float>>, scale: Float,
        table: CodebookTable
    ) -> (Float, Float) {
        table.withKernelArguments { first, midpoints, steps, thresholds in
            let (v, w, n) = (values.baseAddress!, weights.baseAddress!, values.count)
            return active == .avx2
                ? KernelsAVX2.CodebookKernel.projection(
                    values: v, weights: w, vectors: n, scale: scale, first: first, midpoints: midpoints, steps: steps,
                    thresholds: thresholds)
                : Kernels.CodebookKernel.projection(
                    values: v, weights: w, vectors: n, scale: scale, first: first, midpoints: midpoints, steps: steps,
                    thresholds: thresholds)
        }
    }
}
