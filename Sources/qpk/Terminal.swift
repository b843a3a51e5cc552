import Foundation
#if canImport(Glibc)
import Glibc
import QPKCore
import Formats
import Quantize
import Convert
import Inspect
#endif

/// Where output goes, and whether it may use colour and progress bars.
enum Terminal {
    static var stdoutIsTTY: Bool { isatty(STDOUT_FILENO) == 1 }
    static var stderrIsTTY: Bool { isatty(STDERR_FILENO) == 1 }

    /// Colour only on a terminal, and never when `NO_COLOR` is set (no-color.org).
    static var useColor: Bool {
        stdoutIsTTY && ProcessInfo.processInfo.environment["NO_COLOR"].map(\.isEmpty) ?? true
    }

    /// One line on stderr: `qpk: error: <message>`.
    static func error(_ message: String) {
        let line = message.split(separator: "\n").joined(separator: " ")
        FileHandle.standardError.write(Data("qpk: error: \(line)\n".utf8))
    }

    static func warning(_ message: String) {
        FileHandle.standardError.write(Data("qpk: warning: \(message)\n".utf8))
    }

    /// Prints a rendered block of text, ending it with exactly one newline.
    static func printBlock(_ text: String) {
        print(text.hasSuffix("\n") ? String(text.dropLast()) : text)
    }

    /// Prints `value` on stdout with the JSON conventions of every report (``ReportJSON``).
    static func printJSON<T: Encodable>(_ value: T) throws {
        FileHandle.standardOutput.write(try ReportJSON.data(value))
    }
}

/// Parses sizes such as `5GB`, `500MB`, `100KiB` or `4096` (SI units are powers of 1000, as
/// Hugging Face's `max_shard_size`; IEC units powers of 1024).
enum ByteSize {
    static func parse(_ text: String) -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let digits = trimmed.prefix { $0.isNumber || $0 == "." }
        guard let number = Double(digits), number >= 0 else { return nil }
        let unit = trimmed.dropFirst(digits.count).trimmingCharacters(in: .whitespaces).lowercased()
        let multipliers: [String: Double] = [
            "": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
            "kib": 1024, "mib": 1_048_576, "gib": 1_073_741_824, "tib": 1_099_511_627_776,
        ]
        guard let multiplier = multipliers[unit] else { return nil }
        let value = number * multiplier
        guard value >= 1, value < Double(Int.max) else { return nil }
        return Int(value)
    }
}
