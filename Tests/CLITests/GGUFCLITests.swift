import Foundation
import Testing
import QPKCore
import Formats

@Suite("qpk command line: GGUF in and out", .serialized)
struct GGUFCLITests {
    let model = QpkProcess.demoModel.path
    let fixtures = QpkProcess.repositoryRoot.appendingPathComponent("fixtures/gguf")

    @Test("convert --type Q4_0 writes GGUF that inspect, validate and diff read")
    func convertInspectValidateDiff() throws {
        let dir = try TemporaryDirectory()
        let gguf = dir.path("m.gguf")
        let convert = try QpkProcess.run(["convert", model, gguf, "--type", "Q4_0"])
        #expect(convert.status == 0, "\(convert.stderr)")
        #expect(convert.stdout.contains("Q4_0:"))
        #expect(convert.stdout.contains("kept"))
        let inspect = try QpkProcess.run(["inspect", gguf, "--json"])
        #expect(inspect.status == 0)
        let report = try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [String: Any]
        #expect(report?["format"] as? String == "gguf")
        let tensors = report?["tensors"] as? [[String: Any]] ?? []
        #expect(tensors.contains { $0["dtype"] as? String == "Q4_0" })
        #expect(tensors.contains { $0["dtype"] as? String == "F32" })
        let validate = try QpkProcess.run(["validate", gguf])
        #expect(validate.status == 0, "\(validate.stdout)")
        let diff = try QpkProcess.run(["diff", model, gguf])
        #expect(diff.status == 1, "quantized weights differ: \(diff.stdout)")
        #expect(diff.stdout.contains("core.in_proj.weight") || diff.stdout.contains("differ"))
        let back = try QpkProcess.run(["convert", gguf, dir.path("back.safetensors"), "--dtype", "f32"])
        #expect(back.status == 0, "\(back.stderr)")
    }

    @Test("--type with a non-GGUF output, or an unknown type, is one line and exit 2 or a parse error")
    func usage() throws {
        let dir = try TemporaryDirectory()
        let wrong = try QpkProcess.run(["convert", model, dir.path("m.safetensors"), "--type", "Q4_0"])
        #expect(wrong.status == 2)
        #expect(wrong.stderr.split(separator: "\n").count == 1)
        #expect(wrong.stderr.contains("--type"))
        let unknown = try QpkProcess.run(["convert", model, dir.path("m.gguf"), "--type", "Q9_9"])
        #expect(unknown.status != 0)
        #expect(unknown.stderr.contains("Q9_9"))
        #expect(!FileManager.default.fileExists(atPath: dir.path("m.gguf")))
    }

    @Test("a corrupt GGUF fails validate with one line naming the file, the tensor and the rule")
    func corrupt() throws {
        let dir = try TemporaryDirectory()
        var bytes = try Data(contentsOf: fixtures.appendingPathComponent("types.gguf"))
        bytes.removeLast(100)
        let url = dir.url.appendingPathComponent("cut.gguf")
        try bytes.write(to: url)
        let validate = try QpkProcess.run(["validate", url.path])
        #expect(validate.status == 1)
        #expect(validate.stdout.contains("TensorDataOutOfBounds"))
        #expect(validate.stdout.contains("IQ4_XS"))
        let inspect = try QpkProcess.run(["inspect", url.path])
        #expect(inspect.status != 0)
        #expect(inspect.stderr.split(separator: "\n").count == 1)
        #expect(inspect.stderr.contains("cut.gguf") && inspect.stderr.contains("TensorDataOutOfBounds"))
    }

    @Test("a type qpk cannot decode is listed by inspect; reading its values is one clear line")
    func undecodable() throws {
        let path = fixtures.appendingPathComponent("undecodable.gguf").path
        let inspect = try QpkProcess.run(["inspect", path])
        #expect(inspect.status == 0)
        #expect(inspect.stdout.contains("TQ2_0"))
        let stats = try QpkProcess.run(["inspect", path, "--stats"])
        #expect(stats.status != 0)
        #expect(stats.stderr.split(separator: "\n").count == 1)
        #expect(stats.stderr.contains("TQ2_0") && stats.stderr.contains("ternary"))
    }
}
