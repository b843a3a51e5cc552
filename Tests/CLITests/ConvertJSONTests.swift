import Foundation
import Testing

/// `qpk convert --json`, dry run and real run: one schema (spec/json-schemas.md, `qpk convert`).
@Suite("qpk convert --json: the documented schema", .serialized)
struct ConvertJSONTests {
    let model = QpkProcess.demoModel.path

    static let topKeys: Set<String> = [
        "source", "source_format", "destination", "destination_format", "dry_run", "recipe", "allocate",
        "tensors", "quantized_parameters", "quantized_bits_per_weight", "outlier_parameters", "sqnr_db",
        "estimated_bytes", "output_bytes", "seconds",
    ]
    static let tensorKeys: Set<String> = [
        "name", "action", "dtype", "shape", "estimated_bytes", "bytes", "bits_per_weight", "decision",
        "ggml_type", "outliers", "sqnr_db",
    ]
    static let decisionKeys: Set<String> = [
        "method", "scheme", "bits", "group_size", "axis", "scale_search", "outlier_kind", "outlier_budget",
        "max_bits_per_weight", "importance", "zero_points", "codebook", "scale_codes",
    ]

    func json(_ arguments: [String]) throws -> (object: [String: Any], text: String) {
        let result = try QpkProcess.run(arguments)
        #expect(result.status == 0, "\(result.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8), options: [.fragmentsAllowed])
        return (try #require(object as? [String: Any]), result.stdout)
    }

    @Test("a dry run and a real run have the same keys; a dry run's measured values are null")
    func sameKeys() throws {
        let dir = try TemporaryDirectory()
        let output = dir.path("m.qpk")
        let (planned, plannedText) = try json(["convert", model, output, "--dry-run", "--json"])
        let (done, doneText) = try json(["convert", model, output, "--json"])
        for (object, text) in [(planned, plannedText), (done, doneText)] {
            #expect(Set(object.keys) == Self.topKeys)
            #expect(text.hasSuffix("}\n") && !text.hasSuffix("\n\n"), "one trailing newline")
            let tensors = try #require(object["tensors"] as? [[String: Any]])
            #expect(tensors.count == 47)
            for tensor in tensors { #expect(Set(tensor.keys) == Self.tensorKeys) }
            let quantized = tensors.filter { $0["action"] as? String == "quantize" }
            #expect(quantized.count == 10)
            for tensor in quantized {
                let decision = try #require(tensor["decision"] as? [String: Any])
                #expect(Set(decision.keys) == Self.decisionKeys)
                #expect(decision["bits"] as? Int == 4)
                #expect(decision["axis"] as? String == "last")
            }
            let recipe = try #require(object["recipe"] as? [String: Any])
            #expect(recipe["bits"] as? Int == 4, "numbers are numbers")
            #expect(recipe["scale_search"] as? String == "mse", "snake_case keys")
            #expect(object["source"] as? String == model, "paths as given")
            #expect(object["destination"] as? String == output)
        }
        #expect(planned["dry_run"] as? Bool == true)
        #expect(planned["output_bytes"] is NSNull && planned["seconds"] is NSNull && planned["sqnr_db"] is NSNull)
        #expect(done["dry_run"] as? Bool == false)
        #expect((done["output_bytes"] as? Int ?? 0) > 0)
        #expect((done["sqnr_db"] as? Double ?? 0) > 15)
        // The estimate is an upper bound on what is written: outliers may stop short of the cap.
        #expect((done["estimated_bytes"] as? Int ?? 0) <= (planned["estimated_bytes"] as? Int ?? 0))
        let writtenTensors = try #require(done["tensors"] as? [[String: Any]])
        for tensor in writtenTensors {
            #expect(tensor["bytes"] is Int)
            #expect((tensor["bytes"] as? Int ?? .max) <= (tensor["estimated_bytes"] as? Int ?? 0))
        }
    }

    @Test("a relative path stays relative, and a non-QPK output has a null recipe and no decisions")
    func relativePaths() throws {
        let dir = try TemporaryDirectory()
        let (object, _) = try json(["convert", model, dir.path("m.safetensors"), "--dtype", "f16", "--json"])
        #expect(object["recipe"] is NSNull)
        #expect(object["quantized_bits_per_weight"] is NSNull)
        let tensors = try #require(object["tensors"] as? [[String: Any]])
        #expect(tensors.allSatisfy { $0["decision"] is NSNull && $0["action"] as? String == "cast" })
        #expect(object["source"] as? String == model)
    }
}

/// `qpk validate --json` lists every file given, as given (spec/json-schemas.md).
@Suite("qpk validate --json: every file, as given")
struct ValidateJSONTests {
    @Test("a file that cannot be opened is listed with the reason, the report is invalid, exit 2")
    func unreadableFileIsListed() throws {
        let model = "fixtures/models/fracast/model.safetensors"
        let process = Process()
        process.executableURL = QpkProcess.binary
        process.arguments = ["validate", "missing.safetensors", model, "--json"]
        process.currentDirectoryURL = QpkProcess.repositoryRoot
        let out = Pipe()
        process.standardOutput = out
        process.standardError = Pipe()
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 2)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.hasSuffix("}\n") && !text.hasSuffix("\n\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["valid"] as? Bool == false)
        let files = try #require(object["files"] as? [[String: Any]])
        #expect(files.map { $0["file"] as? String } == ["missing.safetensors", model])
        #expect(files[0]["valid"] as? Bool == false && files[0]["format"] is NSNull)
        let problem = try #require((files[0]["problems"] as? [[String: Any]])?.first)
        #expect(problem["rule"] as? String == "cannot_open")
        #expect((problem["message"] as? String ?? "").contains("No such file"))
        #expect(files[1]["valid"] as? Bool == true)
    }
}

/// inspect and diff `--json`: paths as given and one trailing newline (spec/json-schemas.md).
@Suite("qpk inspect and diff --json: paths as given, one newline")
struct InspectDiffJSONTests {
    @Test("a relative path stays relative and the JSON ends with exactly one newline")
    func relativePathsAndNewline() throws {
        let model = "fixtures/models/fracast/model.safetensors"
        for arguments in [["inspect", model, "--json"], ["diff", model, model, "--json"]] {
            let process = Process()
            process.executableURL = QpkProcess.binary
            process.arguments = arguments
            process.currentDirectoryURL = QpkProcess.repositoryRoot
            let out = Pipe()
            process.standardOutput = out
            try process.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
            let text = String(decoding: data, as: UTF8.self)
            #expect(text.hasSuffix("}\n") && !text.hasSuffix("\n\n"), "\(arguments[0])")
            #expect(text.contains("\"file\" : \"\(model)\""), "\(arguments[0])")
            #expect(!text.contains(QpkProcess.repositoryRoot.path), "\(arguments[0])")
        }
    }
}
