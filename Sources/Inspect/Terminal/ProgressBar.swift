import Foundation
import QPKCore
import Formats
import Quantize

/// A one-line progress bar on stderr, redrawn in place with `\r` at most ten times a second and
/// erased by ``finish()``. It draws nothing unless stderr is a terminal. Safe to call from any thread.
///
/// When the units are bytes (`showsRate`), each frame also shows the throughput since the bar was
/// created and the time left at that rate: `converting ███░░ 42% 1.3 GB/s 0:07 left name`.
public final class ProgressBar: @unchecked Sendable {
    private let lock = NSLock()
    private var total: Int
    private let label: String
    private let enabled: Bool
    private let write: @Sendable (String) -> Void
    private var done = 0
    private var lastDraw = 0.0
    private var drawn = false
    private let width = 30
    private let showsRate: Bool
    private let started = ProcessInfo.processInfo.systemUptime

    /// - Parameters:
    ///   - total: units of work (e.g. bytes or tensors).
    ///   - showsRate: the units are bytes: show GB/s and the time left.
    ///   - enabled: defaults to "stderr is a terminal".
    ///   - write: where the frames go; defaults to stderr (injectable for tests).
    public init(
        total: Int, label: String, showsRate: Bool = false, enabled: Bool = isatty(STDERR_FILENO) == 1,
        write: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }
    ) {
        self.total = max(total, 1)
        self.label = label
        self.showsRate = showsRate
        self.enabled = enabled
        self.write = write
    }

    /// Records `units` more units of work done and redraws if 0.1 s passed since the last frame.
    public func advance(by units: Int = 1, detail: String = "") {
        lock.lock()
        defer { lock.unlock() }
        done = min(done + units, total)
        draw(detail)
    }

    /// Sets the absolute progress, `done` of `total` (the shape of the inspect and diff progress
    /// hooks: `options.progress = { bar.update(done: $0, total: $1, detail: $2) }`).
    public func update(done: Int, total: Int, detail: String = "") {
        lock.lock()
        defer { lock.unlock() }
        self.total = max(total, 1)
        self.done = min(max(done, self.done), self.total)
        draw(detail)
    }

    /// Draws a frame; the caller holds the lock.
    private func draw(_ detail: String) {
        guard enabled else { return }
        let now = ProcessInfo.processInfo.systemUptime
        guard now - lastDraw >= 0.1 || done == total else { return }
        lastDraw = now
        let fraction = Double(done) / Double(total)
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        let percent = Int((fraction * 100).rounded(.down))
        var line = "\(label) \(bar) \(percent)%"
        if showsRate, let rate = Self.rate(done: done, seconds: now - started) {
            line += " " + rate
            if done < total { line += " " + Self.clock(Double(total - done) / (Double(done) / (now - started))) + " left" }
        }
        if !detail.isEmpty { line += " \(detail)" }
        if line.count > 100 { line = String(line.prefix(100)) }
        write("\r\u{1B}[2K" + line)
        drawn = true
    }

    /// `done` bytes in `seconds` as GB/s (MB/s below 1 GB/s); nil before anything is measurable.
    static func rate(done: Int, seconds: Double) -> String? {
        guard done > 0, seconds > 0 else { return nil }
        let perSecond = Double(done) / seconds
        return perSecond >= 1e9
            ? String(format: "%.2f GB/s", perSecond / 1e9) : String(format: "%.0f MB/s", perSecond / 1e6)
    }

    /// `seconds` as m:ss (h:mm:ss from an hour on).
    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.isFinite ? max(0, seconds.rounded(.up)) : 0)
        return s >= 3600
            ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }

    /// Erases the bar (the terminal line is left empty for the next output).
    public func finish() {
        lock.lock()
        defer { lock.unlock() }
        if enabled && drawn { write("\r\u{1B}[2K") }
        drawn = false
    }
}
