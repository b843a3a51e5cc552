import ArgumentParser
import Foundation
import Inspect
import QPKCore
import Formats
import Quantize
import Convert

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check files against their format's rules and say exactly what is wrong.",
        discussion: """
            One line per problem: file, tensor, the rule broken and a hint. Exit status: 0 when \
            every file is valid, 1 when any is invalid, 2 when a file could not be checked at all.
            """)

    @Argument(help: "Files to check (safetensors, shard directories, HDF5, QPK, GGUF).")
    var files: [String]

    @Flag(help: "Print the report as JSON (schema: spec/json-schemas.md).")
    var json = false

    @OptionGroup var threading: ThreadOptions

    func run() throws {
        var report = ValidationReport()
        var checkedReport = ValidationReport()
        var trouble = false
        // Files are checked on `--threads` threads at once; the report keeps the command line's order.
        let files = self.files
        let checks = try Parallel.map(count: files.count, workers: try threading.apply()) { CheckpointValidator.validate(path: files[$0]) }
        for (file, (result, checked)) in zip(files, checks) {
            report.append(result)
            if checked {
                checkedReport.append(result)
            } else {
                // Trouble goes to stderr, one line; the JSON report lists the file too.
                trouble = true
                Terminal.error("\(file): \(result.problems.first?.message ?? "cannot be checked")")
            }
        }
        if json {
            FileHandle.standardOutput.write(try report.jsonData())
        } else if !checkedReport.files.isEmpty {
            Terminal.printBlock(checkedReport.renderText(colors: Colors(enabled: Terminal.useColor)))
        }
        if trouble { throw ExitCode(2) }
        if !report.allValid { throw ExitCode(1) }
    }
}
