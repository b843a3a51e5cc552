import Foundation

/// A map from data values to one SVG coordinate, with the ticks of its axis.
protocol ChartScale {
    func callAsFunction(_ value: Double) -> Double
    /// Tick values inside the domain, and their labels.
    func ticks() -> [(value: Double, label: String)]
}

/// `[lower, upper]` → `[start, end]`, linearly; the domain widened to round tick values
/// (steps of 1, 2 or 5 times a power of ten, about `tickCount` of them).
struct LinearScale: ChartScale {
    let lower: Double
    let upper: Double
    let start: Double
    let end: Double
    let step: Double

    /// - Parameter unit: steps are round multiples of this (1024ⁿ for bytes: 10 KiB, not 19.5 KiB).
    init(_ lower: Double, _ upper: Double, to start: Double, _ end: Double, tickCount: Int = 5, nice: Bool = true, unit: Double = 1) {
        var (lo, hi) = lower < upper ? (lower, upper) : (lower - 0.5, upper + 0.5)
        if !lo.isFinite || !hi.isFinite { (lo, hi) = (0, 1) }
        let step = Self.niceStep((hi - lo) / Double(max(tickCount, 1)) / unit) * unit
        if nice {
            lo = (lo / step).rounded(.down) * step
            hi = (hi / step).rounded(.up) * step
        }
        (self.lower, self.upper, self.start, self.end, self.step) = (lo, hi, start, end, step)
    }

    /// The round step (1, 2 or 5 × 10ⁿ) nearest above `raw`.
    static func niceStep(_ raw: Double) -> Double {
        guard raw > 0, raw.isFinite else { return 1 }
        let power = pow(10, (log10(raw)).rounded(.down))
        let fraction = raw / power
        return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power
    }

    func callAsFunction(_ value: Double) -> Double {
        start + (value - lower) / (upper - lower) * (end - start)
    }

    func ticks() -> [(value: Double, label: String)] {
        var out: [(Double, String)] = []
        var i = (lower / step).rounded(.up)
        while i * step <= upper + step * 1e-9, out.count < 40 {
            let v = abs(i * step) < step * 1e-9 ? 0 : i * step
            out.append((v, tickLabel(v, step: step)))
            i += 1
        }
        return out
    }
}

/// `[lower, upper]` (both > 0) → `[start, end]` on a log10 axis, widened to powers of ten;
/// ticks at the powers of ten.
struct LogScale: ChartScale {
    let lower: Double
    let upper: Double
    let start: Double
    let end: Double

    init(_ lower: Double, _ upper: Double, to start: Double, _ end: Double, nice: Bool = true) {
        var lo = max(lower, .leastNormalMagnitude), hi = max(upper, lo * 10)
        if nice {
            lo = pow(10, log10(lo).rounded(.down))
            hi = pow(10, log10(hi).rounded(.up))
        }
        (self.lower, self.upper, self.start, self.end) = (lo, hi, start, end)
    }

    func callAsFunction(_ value: Double) -> Double {
        let v = max(value, lower)
        return start + (log10(v) - log10(lower)) / (log10(upper) - log10(lower)) * (end - start)
    }

    func ticks() -> [(value: Double, label: String)] {
        let first = Int(log10(lower).rounded(.up)), last = Int(log10(upper).rounded(.down))
        guard first <= last else { return [] }
        let stride = max(1, (last - first + 1 + 6) / 7)
        var ticks = Swift.stride(from: first, through: last, by: stride).map { e in (value: pow(10, Double(e)), label: powerLabel(e)) }
        // Less than two decades: 2× and 5× ticks too, so the axis has more than one number.
        if last - first < 2 {
            for e in (first - 1)...last {
                for m in [2.0, 5.0] {
                    let v = m * pow(10, Double(e))
                    if v >= lower && v <= upper { ticks.append((v, HumanUnits.number(v, digits: 2))) }
                }
            }
            ticks.sort { $0.value < $1.value }
        }
        return ticks
    }

    private func powerLabel(_ e: Int) -> String {
        switch e {
        case 0: "1"
        case 1: "10"
        case 2: "100"
        case 3: "1k"
        case 4: "10k"
        case 5: "100k"
        case 6: "1M"
        case 7: "10M"
        case 8: "100M"
        case 9: "1G"
        default: "1e\(e)"
        }
    }
}

/// A tick label with no more digits than the step needs: `0.05`, `20`, `1.5e-05`.
func tickLabel(_ value: Double, step: Double) -> String {
    if value == 0 { return "0" }
    let magnitude = abs(value)
    if magnitude >= 1e5 || magnitude < 1e-3 { return HumanUnits.number(value, digits: 2) }
    let decimals = max(0, -Int(log10(step).rounded(.down)))
    return HumanUnits.fixed(value, decimals: min(decimals, 6))
}

/// A coordinate with one decimal, the precision SVG needs here.
func coordinate(_ value: Double) -> String {
    guard value.isFinite else { return "0" }
    let rounded = (value * 10).rounded() / 10
    return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
}
