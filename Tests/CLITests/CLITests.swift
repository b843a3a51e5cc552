import Foundation
import Testing
import QPKCore
import Formats

@Suite("qpk command line", .serialized)
struct CLITests {
    let model = QpkProcess.demoModel.path

    @Test("help lists the four commands")
    func help() throws {
        let result = try QpkProcess.run(["--help"])
        #expect(result.status == 0)
        for command in ["convert", "inspect", "diff", "validate"] {
            #expect(result.stdout.contains(command))
        }
    }

    @Test("subcommand help exits 0; a bad flag value is one line and exit 2")
    func subcommandHelpAndBadValues() throws {
        let help = try QpkProcess.run(["convert", "--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("--group-size"))
        let dir = try TemporaryDirectory()
        let bad = try QpkProcess.run(["convert", model, dir.path("m.qpk"), "--bits", "5"])
        #expect(bad.status == 2)
        #expect(bad.stderr.split(separator: "\n").count == 1)
        #expect(bad.stderr.contains("--bits"))
        #expect(!FileManager.default.fileExists(atPath: dir.path("m.qpk")))
    }

    @Test("inspect prints one row per tensor and a total line")
    func inspectTable() throws {
        let result = try QpkProcess.run(["inspect", model])
        #expect(result.status == 0)
        #expect(result.stdout.contains("core.in_proj.weight"))
        #expect(result.stdout.contains("64×7") || result.stdout.contains("64x7") || result.stdout.contains("[64, 7]"))
        #expect(result.stdout.lowercased().contains("total"))
        #expect(result.stdout.contains("47 tensors"))
    }

    @Test("convert to QPK, inspect the quantization, dequantize back")
    func quantizeAndBack() throws {
        let dir = try TemporaryDirectory()
        let qpk = dir.path("m.qpk")
        let convert = try QpkProcess.run(["convert", model, qpk, "--bits", "4", "--group-size", "64", "--json"])
        #expect(convert.status == 0, "\(convert.stderr)")
        let summary = try JSONSerialization.jsonObject(with: Data(convert.stdout.utf8)) as? [String: Any]
        #expect((summary?["quantized_parameters"] as? Int ?? 0) > 40_000)
        let inspect = try QpkProcess.run(["inspect", qpk, "--json"])
        #expect(inspect.status == 0)
        let report = try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [String: Any]
        #expect(report?["format"] as? String == "qpk")
        let tensors = report?["tensors"] as? [[String: Any]] ?? []
        let quantized = tensors.compactMap { $0["quantization"] as? [String: Any] }
        #expect(!quantized.isEmpty)
        #expect(quantized.allSatisfy { $0["bits"] as? Int == 4 })
        let restored = dir.path("r.safetensors")
        let back = try QpkProcess.run(["convert", qpk, restored, "--dtype", "f32"])
        #expect(back.status == 0, "\(back.stderr)")
        #expect(try QpkProcess.run(["validate", model, qpk, restored]).status == 0)
    }

    @Test("dry run prints the plan and writes nothing")
    func dryRun() throws {
        let dir = try TemporaryDirectory()
        let qpk = dir.path("m.qpk")
        let result = try QpkProcess.run(["convert", model, qpk, "--dry-run"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("quantize"))
        #expect(result.stdout.contains("copy"))
        #expect(!FileManager.default.fileExists(atPath: qpk))
    }

    @Test("an existing output is kept unless --force")
    func refusesOverwrite() throws {
        let dir = try TemporaryDirectory()
        let out = dir.path("out.safetensors")
        try Data("keep".utf8).write(to: URL(fileURLWithPath: out))
        let refused = try QpkProcess.run(["convert", model, out])
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("--force"))
        #expect(try String(contentsOfFile: out, encoding: .utf8) == "keep")
        #expect(try QpkProcess.run(["convert", model, out, "--force"]).status == 0)
    }

    @Test("errors are one line naming the file; every command uses exit code 2 for trouble")
    func troubleExitCodes() throws {
        let dir = try TemporaryDirectory()
        let missing = dir.path("missing.safetensors")
        let validate = try QpkProcess.run(["validate", missing])
        #expect(validate.status == 2)
        let diff = try QpkProcess.run(["diff", missing, model])
        #expect(diff.status == 2)
        #expect(diff.stderr.contains("missing.safetensors"))
        #expect(diff.stderr.split(separator: "\n").count == 1)
        let inspect = try QpkProcess.run(["inspect", missing])
        #expect(inspect.status == 2)
        let badExtension = try QpkProcess.run(["convert", model, dir.path("out.xyz")])
        #expect(badExtension.status == 2)
        #expect(badExtension.stderr.contains("out.xyz"))
    }

    @Test("a model diffed with itself is equal; with its quantized copy it differs")
    func diffExitCodes() throws {
        #expect(try QpkProcess.run(["diff", model, model]).status == 0)
        let dir = try TemporaryDirectory()
        let qpk = dir.path("m.qpk")
        #expect(try QpkProcess.run(["convert", model, qpk]).status == 0)
        let diff = try QpkProcess.run(["diff", model, qpk])
        #expect(diff.status == 1)
        #expect(diff.stdout.contains("core.block.ffn.up.weight"))
    }

    @Test("colour only on a terminal: piped output has no escape codes")
    func noColorWhenPiped() throws {
        let result = try QpkProcess.run(["inspect", model, "--stats"])
        #expect(!result.stdout.contains("\u{1B}["))
    }
}
