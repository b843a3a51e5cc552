import ArgumentParser
import Convert
import Formats
import Foundation
import Inspect
import QPKCore

/// `--report PATH|-` and `--force` of `inspect` and `diff` (spec/cli.md §9, spec/report.md): where
/// the HTML report goes. A file is written atomically (``AtomicOutput``) and, like every qpk
/// output, never replaces an existing file without `--force`.
struct ReportOptions: ParsableArguments {
    @Option(name: .customLong("report"), help: ArgumentHelp(
        "Write a self-contained HTML report to PATH ('-': standard output; spec/report.md).", valueName: "path"))
    var path: String?

    @Flag(help: "Replace an existing report file (needs --report PATH).")
    var force = false

    /// Whether the report goes to standard output.
    var toStandardOutput: Bool { path == "-" }

    /// Checks the combination before any work: `--force` needs a report file, `--report -`
    /// cannot share standard output with `--json`, the report may not replace an input, and an
    /// existing report file needs `--force`. Returns the output, opened (nothing at the path yet).
    func open(json: Bool, inputs: [String]) throws -> AtomicOutput? {
        guard let path else {
            if force { throw UsageError(.notApplicable, "--force replaces an existing report file and needs --report PATH") }
            return nil
        }
        if path == "-" {
            if json { throw UsageError(.notApplicable, "--report - and --json both write to standard output; give --report a file path to have both") }
            if force { throw UsageError(.notApplicable, "--force replaces an existing report file; --report - writes to standard output") }
            return nil
        }
        let url = URL(fileURLWithPath: path)
        for input in inputs where URL(fileURLWithPath: input).standardizedFileURL.path == url.standardizedFileURL.path {
            throw ConversionError.sameFile(url.path)
        }
        return try AtomicOutput(destination: url, overwrite: force)
    }

    /// Writes `html` to `output` (committing it) or to standard output; says where it went on
    /// standard output unless `quiet` (then standard output carries `--json` alone).
    func write(_ html: String, to output: AtomicOutput?, quiet: Bool) throws {
        let bytes = Array(html.utf8)
        guard let output else {
            FileHandle.standardOutput.write(Data(bytes))
            return
        }
        try output.append(bytes)
        try output.commit()
        if !quiet { print("wrote \(path ?? "") (html report, \(HumanUnits.bytes(bytes.count)))") }
    }
}
