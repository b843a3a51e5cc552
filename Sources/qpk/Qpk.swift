import ArgumentParser
import Foundation

@main
struct Qpk: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "qpk",
        abstract: "Convert, quantize, inspect, diff and validate neural-network checkpoints.",
        discussion: """
            Formats: safetensors (single file, or sharded: a directory or *.index.json), HDF5 \
            (Keras 2/3 and plain trees of datasets) and QPK, qpk's packed-quantization format \
            (spec/qpk-format.md). Input formats are detected by their magic bytes; output formats \
            by extension.
            """,
        version: version,
        subcommands: [ConvertCommand.self, InspectCommand.self, DiffCommand.self, ValidateCommand.self])

    /// Runs the command line with qpk's exit codes: `diff` and `validate` follow diff(1)
    /// (0 equal/valid, 1 different/invalid, 2 trouble), every other command exits 0 or 1.
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let troubleCode: Int32 = ["diff", "validate"].contains(arguments.first ?? "") ? 2 : 1
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch let code as ExitCode {
            Foundation.exit(code.rawValue)
        } catch {
            let exitCode = Self.exitCode(for: error)
            if exitCode == .success {
                print(Self.fullMessage(for: error))
                Foundation.exit(0)
            }
            if isParserError(error) {
                FileHandle.standardError.write(Data((Self.fullMessage(for: error) + "\n").utf8))
            } else {
                Terminal.error(String(describing: error))
            }
            Foundation.exit(troubleCode)
        }
    }

    private static func isParserError(_ error: Error) -> Bool {
        error is ValidationError || String(reflecting: type(of: error)).hasPrefix("ArgumentParser.")
    }
}
