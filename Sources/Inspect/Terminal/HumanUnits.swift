import Foundation
import QPKCore
import Formats
import Quantize

/// Short human-readable renderings of sizes and counts.
public enum HumanUnits {
    /// Bytes in IEC units with three significant digits: `512 B`, `1.5 KiB`, `87.6 MiB`, `1.2 GiB`.
    public static func bytes(_ count: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var value = Double(count)
        var unit = 0
        while abs(value) >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 { return "\(count) B" }
        return "\(significant(value)) \(units[unit])"
    }

    /// A parameter count with an SI suffix: `950`, `22.7K`, `22.7M`, `1.2B`, `3.4T`.
    public static func count(_ count: Int) -> String {
        let units = ["", "K", "M", "B", "T"]
        var value = Double(count)
        var unit = 0
        while abs(value) >= 1000, unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        if unit == 0 { return "\(count)" }
        // Rounding may carry into the next unit (999.96K → 1000.0K): move up instead.
        if significant(value) == "1000", unit < units.count - 1 { return "1\(units[unit + 1])" }
        return "\(significant(value))\(units[unit])"
    }

    /// A number in compact scientific-or-fixed form for tables: `-0.0123`, `1.5e-07`, `3.2e+04`.
    public static func number(_ value: Double?, digits: Int = 4) -> String {
        guard let value else { return "-" }
        if value.isNaN { return "nan" }
        if value.isInfinite { return value > 0 ? "inf" : "-inf" }
        if value == 0 { return "0" }
        let magnitude = abs(value)
        if magnitude >= 1e-3 && magnitude < 1e5 {
            return trimmed(fixed(value, decimals: max(0, digits - 1 - Int(magnitude.log10Floor))))
        }
        return scientific(value, digits: digits)
    }

    /// Three significant digits with no trailing zeros: 1.5, 22.7, 512, 1.23.
    static func significant(_ value: Double) -> String {
        let decimals = value >= 100 ? 0 : (value >= 10 ? 1 : 2)
        return trimmed(fixed(value, decimals: decimals))
    }

    /// `value` rounded to `decimals` places, without Foundation formatting (locale independent).
    static func fixed(_ value: Double, decimals: Int) -> String {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        guard scaled < 9e15 else { return "\(value)" }
        let whole = Int(scaled) / Int(scale)
        let fraction = Int(scaled) % Int(scale)
        var text = "\(whole)"
        if decimals > 0 {
            let digits = String(fraction)
            text += "." + String(repeating: "0", count: decimals - digits.count) + digits
        }
        return (value < 0 && scaled != 0 ? "-" : "") + text
    }

    static func trimmed(_ text: String) -> String {
        guard text.contains(".") else { return text }
        var t = Substring(text)
        while t.hasSuffix("0") { t = t.dropLast() }
        if t.hasSuffix(".") { t = t.dropLast() }
        return String(t)
    }

    /// `d.ddde±XX` with `digits` significant digits.
    static func scientific(_ value: Double, digits: Int) -> String {
        var exponent = Int(abs(value).log10Floor)
        var mantissa = abs(value) / pow10(exponent)
        var body = fixed(mantissa, decimals: digits - 1)
        if body.hasPrefix("10") {
            exponent += 1
            mantissa /= 10
            body = fixed(mantissa, decimals: digits - 1)
        }
        let sign = exponent < 0 ? "-" : "+"
        let e = abs(exponent) < 10 ? "0\(abs(exponent))" : "\(abs(exponent))"
        return (value < 0 ? "-" : "") + trimmed(body) + "e" + sign + e
    }

    static func pow10(_ exponent: Int) -> Double {
        var result = 1.0
        if exponent >= 0 { for _ in 0..<exponent { result *= 10 } } else { for _ in 0..<(-exponent) { result /= 10 } }
        return result
    }
}

extension Double {
    /// ⌊log10 |x|⌋ for finite non-zero x, robust to the rounding of `log10` at powers of ten.
    var log10Floor: Double {
        let x = abs(self)
        var e = log10(x).rounded(.down)
        if HumanUnits.pow10(Int(e) + 1) <= x { e += 1 }
        if HumanUnits.pow10(Int(e)) > x { e -= 1 }
        return e
    }
}
