import Foundation
import GroupKernels
import GroupKernelsAVX2

/// Which build of ``GroupKernels/GroupKernel`` this process runs: the AVX2 one (8 floats per
/// instruction instead of 4) when the CPU has AVX2, else the baseline one. Both give the same bits
/// (GroupKernels/GroupKernel.swift), so the choice changes speed only.
///
/// The environment variable `QPK_SIMD=baseline` forces the baseline build (for comparisons and
/// tests); `QPK_SIMD=avx2` asks for AVX2 and is ignored on a CPU without it.
public enum GroupKernelDispatch {
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

    /// ``GroupKernels/GroupKernel/extremes(_:count:)`` of the active build.
    @inline(__always)
    static func extremes(_ base: UnsafePointer<Float>, count: Int) -> (lo: Float, hi: Float, signedAbsMax: Float) {
        active == .avx2
            ? GroupKernelsAVX2.GroupKernel.extremes(base, count: count)
            : GroupKernels.GroupKernel.extremes(base, count: count)
    }

    /// ``GroupKernels/GroupKernel/encode(_:count:codes:scale:zero:top:)`` of the active build.
    @inline(__always)
    static func encode(
        _ x: UnsafePointer<Float>, count: Int, codes: UnsafeMutablePointer<UInt8>, scale: Float, zero: Float, top: Float
    ) -> GroupKernels.GroupKernel.Measure {
        if active == .avx2 {
            let m = GroupKernelsAVX2.GroupKernel.encode(x, count: count, codes: codes, scale: scale, zero: zero, top: top)
            return .init(signal: m.signal, noise: m.noise, worst: m.worst)
        }
        return GroupKernels.GroupKernel.encode(x, count: count, codes: codes, scale: scale, zero: zero, top: top)
    }
}
