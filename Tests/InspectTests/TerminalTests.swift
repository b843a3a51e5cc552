import Foundation
import Testing
@testable import Inspect
import QPKCore
import Formats
import Quantize

@Suite("Terminal formatting")
struct TerminalTests {
    @Test("Bytes in IEC units with three significant digits")
    func bytes() {
        #expect(HumanUnits.bytes(0) == "0 B")
        #expect(HumanUnits.bytes(1023) == "1023 B")
        #expect(HumanUnits.bytes(1024) == "1 KiB")
        #expect(HumanUnits.bytes(1536) == "1.5 KiB")
        #expect(HumanUnits.bytes(90_868_376) == "86.7 MiB")
        #expect(HumanUnits.bytes(1_288_490_189) == "1.2 GiB")
        #expect(HumanUnits.bytes(5 << 40) == "5 TiB")
    }

    @Test("Parameter counts with K/M/B suffixes")
    func counts() {
        #expect(HumanUnits.count(950) == "950")
        #expect(HumanUnits.count(22_700) == "22.7K")
        #expect(HumanUnits.count(22_713_216) == "22.7M")
        #expect(HumanUnits.count(1_234_567_890) == "1.23B")
        #expect(HumanUnits.count(999_960) == "1M")
    }

    @Test("Table numbers: fixed in [1e-3, 1e5), scientific outside, four significant digits")
    func numbers() {
        #expect(HumanUnits.number(0.0123) == "0.0123")
        #expect(HumanUnits.number(-1.5e-7) == "-1.5e-07")
        #expect(HumanUnits.number(32000) == "32000")
        #expect(HumanUnits.number(123_456) == "1.235e+05")
        #expect(HumanUnits.number(9.99999) == "10")
        #expect(HumanUnits.number(0.001) == "0.001")
        #expect(HumanUnits.number(1e-300) == "1e-300")
        #expect(HumanUnits.number(nil) == "-" && HumanUnits.number(.infinity) == "inf" && HumanUnits.number(.nan) == "nan")
    }

    @Test("Tables align columns, right-align numbers and ignore colour codes when measuring")
    func table() {
        var table = TableRenderer(columns: [.init("name"), .init("bytes", .right)], colors: Colors(enabled: true))
        table.append([Colors(enabled: true).red("a"), "1 KiB"])
        table.append(["longer.name", "12 B"])
        table.footer = [["total", "1.01 KiB"]]
        let plain = table.render().replacingOccurrences(of: "\u{1B}[", with: "").split(separator: "\n").map(String.init)
        let stripped = table.render().split(separator: "\n").map { line in
            line.replacing(/\x1B\[[0-9;]*m/, with: "")
        }
        #expect(stripped == [
            "name            bytes",
            "a               1 KiB",
            "longer.name      12 B",
            "─────────────────────",
            "total        1.01 KiB",
        ])
        #expect(plain.count == 5)
        #expect(Colors.visibleWidth(Colors(enabled: true).bold("abc")) == 3)
    }

    @Test("Colour is off unless enabled, and automatic mode honours NO_COLOR")
    func colors() {
        #expect(Colors(enabled: false).red("x") == "x")
        #expect(Colors(enabled: true).red("x") == "\u{1B}[31mx\u{1B}[0m")
        #expect(Colors.automatic(isTerminal: true, environment: [:]).isEnabled)
        #expect(!Colors.automatic(isTerminal: true, environment: ["NO_COLOR": ""]).isEnabled)
        #expect(!Colors.automatic(isTerminal: false, environment: [:]).isEnabled)
    }

    @Test("Histograms render as block sparklines and proportional bars")
    func charts() {
        #expect(BarChart.sparkline([0, 1, 4, 8]) == " ▁▄█")
        #expect(BarChart.sparkline([]) == "")
        let bars = BarChart.bars(.init(lower: 0, upper: 2, counts: [4, 2]), width: 4)
        #expect(bars == ["[0, 1)  4  ████", "[1, 2]  2  ██"])
    }

    @Test("The progress bar draws with \\r, throttles, and erases itself at the end")
    func progressBar() {
        let frames = Frames()
        let bar = ProgressBar(total: 4, label: "diff", enabled: true, write: { frames.append($0) })
        bar.advance(detail: "w1")
        bar.advance()  // within 0.1 s of the first frame: not drawn
        bar.advance(by: 2)  // completion is always drawn
        bar.finish()
        let all = frames.all
        #expect(all.count == 3)
        #expect(all[0].hasPrefix("\r\u{1B}[2Kdiff ") && all[0].hasSuffix(" 25% w1"))
        #expect(all[1].hasSuffix(" 100%"))
        #expect(all[2] == "\r\u{1B}[2K")
        let hooked = Frames()
        let hook = ProgressBar(total: 0, label: "inspect", enabled: true, write: { hooked.append($0) })
        hook.update(done: 2, total: 2, detail: "last.weight")
        #expect(hooked.all == ["\r\u{1B}[2Kinspect ██████████████████████████████ 100% last.weight"])
        let silent = Frames()
        let off = ProgressBar(total: 1, label: "x", enabled: false, write: { silent.append($0) })
        off.advance()
        off.finish()
        #expect(silent.all.isEmpty)
    }

    @Test("A byte-counting progress bar shows GB/s and the time left at that rate")
    func progressBarRate() throws {
        #expect(ProgressBar.rate(done: 3_000_000_000, seconds: 2) == "1.50 GB/s")
        #expect(ProgressBar.rate(done: 250_000_000, seconds: 1) == "250 MB/s")
        #expect(ProgressBar.rate(done: 0, seconds: 1) == nil)
        #expect(ProgressBar.clock(7.2) == "0:08")
        #expect(ProgressBar.clock(125) == "2:05")
        #expect(ProgressBar.clock(3725) == "1:02:05")
        let frames = Frames()
        let bar = ProgressBar(total: 4_000_000, label: "converting", showsRate: true, enabled: true, write: { frames.append($0) })
        Thread.sleep(forTimeInterval: 0.05)
        bar.advance(by: 1_000_000, detail: "w")
        let frame = try #require(frames.all.first)
        // 1 MB in ≥ 0.05 s: at most 20 MB/s, and 3 MB still to go at that rate.
        #expect(frame.contains(" 25% "), "\(frame)")
        #expect(frame.contains(" MB/s ") && frame.contains(" left w"), "\(frame)")
        bar.advance(by: 3_000_000)
        #expect(frames.all.last?.contains(" left") == false)
    }

    @Test("Validation text: one line per problem, FILE: tensor 'X': RULE: message (hint)")
    func validationText() {
        var report = ValidationReport()
        report.append(.init(file: "ok.safetensors", format: "safetensors", tensors: 1))
        report.append(.init(file: "bad.safetensors", format: nil, problems: [
            .init(rule: "header_too_large", message: "header length 9e18 exceeds the file", hint: "looks like a git-lfs pointer / truncated download"),
            .init(tensor: "w", rule: "misaligned", message: "offsets [3, 7) not a multiple of 4"),
        ]))
        #expect(report.renderText().split(separator: "\n") == [
            "ok.safetensors: OK (safetensors, 1 tensor)",
            "bad.safetensors: header_too_large: header length 9e18 exceeds the file (looks like a git-lfs pointer / truncated download)",
            "bad.safetensors: tensor 'w': misaligned: offsets [3, 7) not a multiple of 4",
        ])
        #expect(report.exitStatus == 1 && !report.allValid)
        #expect(ValidationReport(files: [.init(file: "x", format: "qpk")]).exitStatus == 0)
    }
}

/// Collects progress-bar frames across threads.
final class Frames: @unchecked Sendable {
    private let lock = NSLock()
    private var frames: [String] = []
    func append(_ frame: String) { lock.lock(); frames.append(frame); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return frames }
}
