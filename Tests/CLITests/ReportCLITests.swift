import Foundation
import Testing
import QPKCore
import Formats

/// `--report PATH|-` of `inspect` and `diff` (spec/cli.md §9): where the HTML goes, what standard
/// output carries, and the same refusal of an existing file as every other output.
@Suite("qpk --report", .serialized)
struct ReportCLITests {
    let model = QpkProcess.demoModel.path

    /// The embedded data block of a report page.
    func dataBlock(_ html: String) throws -> [String: Any] {
        let open = "<script type=\"application/json\" id=\"qpk-report-data\">"
        let start = try #require(html.range(of: open))
        let end = try #require(html.range(of: "</script>", range: start.upperBound..<html.endIndex))
        return try #require(try JSONSerialization.jsonObject(with: Data(html[start.upperBound..<end.lowerBound].utf8)) as? [String: Any])
    }

    @Test("inspect --report PATH writes the page and says so in one line instead of the table")
    func inspectReportFile() throws {
        let dir = try TemporaryDirectory()
        let result = try QpkProcess.run(["inspect", model, "--report", dir.path("r.html")])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.hasPrefix("wrote \(dir.path("r.html")) (html report, ") && result.stdout.split(separator: "\n").count == 1)
        let html = try String(contentsOfFile: dir.path("r.html"), encoding: .utf8)
        #expect(html.hasPrefix("<!DOCTYPE html>") && html.contains("id=\"chart-layers\""))
        #expect(try dataBlock(html)["report"] as? String == "inspect")
    }

    @Test("--report with --json: JSON on standard output, the same JSON the page embeds")
    func reportWithJSON() throws {
        let dir = try TemporaryDirectory()
        let result = try QpkProcess.run(["inspect", model, "--report", dir.path("r.html"), "--json", "--bins", "8"])
        #expect(result.status == 0, "\(result.stderr)")
        let printed = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? NSDictionary
        let html = try String(contentsOfFile: dir.path("r.html"), encoding: .utf8)
        #expect((try dataBlock(html)["inspect"] as? NSDictionary) == printed)
        let tensors = printed?["tensors"] as? [[String: Any]] ?? []
        let histogram = (tensors.first?["stats"] as? [String: Any])?["histogram"] as? [String: Any]
        #expect((histogram?["counts"] as? [Int])?.count == 8)
    }

    @Test("--report - writes the page to standard output, byte for byte the file's (reproducible)")
    func reportToStandardOutput() throws {
        let dir = try TemporaryDirectory()
        let piped = try QpkProcess.run(["inspect", model, "--report", "-"])
        #expect(piped.status == 0)
        _ = try QpkProcess.run(["inspect", model, "--report", dir.path("r.html")])
        #expect(piped.stdout == (try String(contentsOfFile: dir.path("r.html"), encoding: .utf8)))
    }

    @Test("An existing report is refused without --force, before any work, and replaced with it")
    func existingReport() throws {
        let dir = try TemporaryDirectory()
        let path = dir.path("r.html")
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: path))
        let refused = try QpkProcess.run(["inspect", model, "--report", path])
        #expect(refused.status == 2 && refused.stderr.contains("already_exists"))
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "keep me")
        let forced = try QpkProcess.run(["diff", model, model, "--report", path, "--force"])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(try dataBlock(String(contentsOfFile: path, encoding: .utf8))["report"] as? String == "diff")
    }

    @Test("Combinations that would do nothing or clash are usage errors (exit 2)", arguments: [
        ["inspect", "MODEL", "--report", "-", "--json"],
        ["inspect", "MODEL", "--force"],
        ["inspect", "MODEL", "--report", "-", "--force"],
        ["diff", "MODEL", "MODEL", "--report", "-", "--json"],
        ["inspect", "MODEL", "--report", "MODEL", "--force"],
        ["inspect", "MODEL", "--bins", "8"],
    ])
    func usageErrors(arguments: [String]) throws {
        let result = try QpkProcess.run(arguments.map { $0 == "MODEL" ? model : $0 })
        #expect(result.status == 2, "\(arguments): \(result.stderr)")
        #expect(result.stdout.isEmpty && result.stderr.split(separator: "\n").count == 1)
    }

    @Test("diff --report keeps the exit status: 1 for a quantized copy, with the page written")
    func diffReport() throws {
        let dir = try TemporaryDirectory()
        let qpk = dir.path("m.qpk")
        #expect(try QpkProcess.run(["convert", model, qpk]).status == 0)
        let result = try QpkProcess.run(["diff", model, qpk, "--report", dir.path("d.html")])
        #expect(result.status == 1 && result.stdout.hasPrefix("wrote "))
        let block = try dataBlock(String(contentsOfFile: dir.path("d.html"), encoding: .utf8))
        let diff = block["diff"] as? [String: Any]
        #expect((diff?["layers"] as? [Any])?.isEmpty == false && (diff?["kinds"] as? [Any])?.isEmpty == false)
    }
}
