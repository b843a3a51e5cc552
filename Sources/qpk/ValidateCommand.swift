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

    func run() throws {
        var report = ValidationReport()
        var trouble = false
        for file in files {
            do {
                report.append(try CheckpointValidator.validate(URL(fileURLWithPath: file)))
            } catch {
                trouble = true
                Terminal.error(String(describing: error))
            }
        }
        if json {
            FileHandle.standardOutput.write(try report.jsonData())
            FileHandle.standardOutput.write(Data("\n".utf8))
        } else {
            Terminal.printBlock(report.renderText(colors: Colors(enabled: Terminal.useColor)))
        }
        if trouble { throw ExitCode(2) }
        if !report.allValid { throw ExitCode(1) }
    }
}
