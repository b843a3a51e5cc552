import ArgumentParser
import Foundation
import QPKCore
import Formats
import Quantize
import Convert
import Inspect

@main
struct Qpk: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "qpk",
        abstract: "Convert, quantize, inspect, diff and validate neural-network checkpoints.",
        discussion: """
            Formats: safetensors (single file, or sharded: a directory or *.index.json), HDF5 \
            (Keras 2/3 and plain trees of datasets), QPK, qpk's packed-quantization format \
            (spec/qpk-format.md), and GGUF, llama.cpp's format (spec/gguf.md). Input formats are detected by their magic bytes; output formats \
            by extension.
            """,
        version: version,
        subcommands: [ConvertCommand.self, InspectCommand.self, DiffCommand.self, ValidateCommand.self, CalibrateCommand.self,
                      TokenizeCommand.self, EmbedCommand.self, Hdf5ProbeCommand.self])

    /// Runs the command line with qpk's exit statuses (``ExitStatus``, spec/cli.md), the same in
    /// every command: 0 success/valid/equal, 1 invalid/different, 2 trouble.
    static func main() {
        TemporaryFiles.removeOnTermination()
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first != Hdf5ProbeCommand.name { Hdf5ProbeCommand.enableIsolation() }
        var command: ParsableCommand
        do {
            command = try parseAsRoot(arguments)
        } catch {
            // Parse errors, --help and --version: ArgumentParser's own message and usage.
            let code = Self.exitCode(for: error)
            if code == .success {
                print(Self.fullMessage(for: error))
                Foundation.exit(ExitStatus.success)
            }
            FileHandle.standardError.write(Data((Self.fullMessage(for: error) + "\n").utf8))
            Foundation.exit(ExitStatus.trouble)
        }
        do {
            try command.run()
        } catch let code as ExitCode {
            Foundation.exit(code.rawValue)
        } catch let error as ValidationError {
            Terminal.error(error.message)
            Foundation.exit(ExitStatus.trouble)
        } catch where String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") {
            // `qpk SUBCOMMAND --help` arrives here as the help command's "error".
            let code = Self.exitCode(for: error)
            let message = Self.fullMessage(for: error)
            if code == .success {
                print(message)
                Foundation.exit(ExitStatus.success)
            }
            FileHandle.standardError.write(Data((message + "\n").utf8))
            Foundation.exit(ExitStatus.trouble)
        } catch {
            // Everything else a command throws is one line naming what is wrong.
            Terminal.error(String(describing: error))
            Foundation.exit(ExitStatus.code(for: error))
        }
    }
}
