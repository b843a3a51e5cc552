import Foundation
import Testing
@testable import Inspect
import QPKCore
import Formats
import Quantize

/// The JSON keys are a documented contract (spec/json-schemas.md): these tests pin them.
@Suite("JSON schemas are stable")
struct JSONSchemaTests {
    func object(_ data: Data) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test("inspect: top-level, tensor, stats, quantization, layer and summary keys")
    func inspectKeys() throws {
        let reader = MemoryReader(name: "m.qpk", format: .qpk)
        reader.add(smallQuantized())
        reader.add("n", [1, .nan])
        let report = try InspectReport.build(reader: reader, options: InspectOptions(statistics: true))
        let json = try object(report.jsonData())
        #expect(Set(json.keys) == ["format", "file", "metadata", "tensors", "layers", "summary", "quantized_file"])
        #expect(json["quantized_file"] is NSNull)
        let tensors = try #require(json["tensors"] as? [[String: Any]])
        #expect(Set(tensors[0].keys) == ["name", "dtype", "shape", "parameters", "bytes", "bits_per_weight", "stats", "quantization"])
        let stats = try #require(tensors[0]["stats"] as? [String: Any])
        #expect(Set(stats.keys) == ["count", "min", "max", "mean", "std", "absmax", "l2_norm", "kurtosis", "p1", "p50", "p99",
                                    "nan", "pos_inf", "neg_inf", "zeros", "subnormals", "beyond_3sigma", "beyond_6sigma", "histogram"])
        #expect(stats["histogram"] is NSNull)
        let q = try #require(tensors[0]["quantization"] as? [String: Any])
        #expect(Set(q.keys) == ["bits", "group_size", "scheme", "method", "outliers", "outlier_kind", "bits_per_weight",
                                "sqnr_db", "max_abs_error", "stored_bytes", "outlier_statistic", "outlier_threshold",
                                "axis", "decision", "zero_points", "group_index", "codebook", "transform", "scale_codes"])
        #expect(q["zero_points"] as? String == "f16" && q["transform"] is NSNull && q["scale_codes"] is NSNull)
        #expect(q["axis"] as? String == "last")
        #expect(tensors[1]["quantization"] is NSNull)
        let layer = try #require((json["layers"] as? [[String: Any]])?.first)
        #expect(Set(layer.keys) == ["prefix", "tensors", "parameters", "bytes", "bits_per_weight", "min_sqnr_db", "absmax"])
        let summary = try #require(json["summary"] as? [String: Any])
        #expect(Set(summary.keys) == ["tensors", "parameters", "bytes", "bits_per_weight", "quantized_tensors"])
        #expect(try ReportJSON.decoder().decode(InspectReport.self, from: report.jsonData()) == report)
    }

    @Test("diff: keys, and infinite SQNR written as the string \"inf\"")
    func diffKeys() throws {
        let a = MemoryReader().add("w", [1, 2]).add("x", [1])
        let b = MemoryReader().add("w", [1, 2.5]).add("y", [1])
        let diff = try CheckpointDiff.compare(a, a)
        let data = try diff.jsonData()
        #expect(String(decoding: data, as: UTF8.self).contains("\"sqnr_db\" : \"inf\""))
        let json = try object(try CheckpointDiff.compare(a, b).jsonData())
        #expect(Set(json.keys) == ["a", "b", "tolerance", "map", "only_in_a", "only_in_b", "shape_mismatches", "metadata", "tensors",
                                   "layers", "kinds", "layer_kinds", "summary"])
        let groupKeys: Set<String> = ["prefix", "kind", "tensors", "changed", "elements", "relative_l2", "cosine", "sqnr_db", "max_abs"]
        for key in ["layers", "kinds", "layer_kinds"] {
            let groups = try #require(json[key] as? [[String: Any]])
            #expect(!groups.isEmpty && groups.allSatisfy { Set($0.keys) == groupKeys })
        }
        #expect(Set((json["tolerance"] as? [String: Any] ?? [:]).keys) == ["rtol", "atol", "equal_nan"])
        let t = try #require((json["tensors"] as? [[String: Any]])?.first)
        #expect(Set(t.keys) == ["name", "name_a", "name_b", "dtype_a", "dtype_b", "shape", "elements", "status", "max_abs",
                                "mean_abs", "relative_l2", "cosine", "sqnr_db", "out_of_tolerance", "nonfinite_mismatches", "worst", "note"])
        #expect(Set((t["worst"] as? [String: Any] ?? [:]).keys) == ["index", "flat_index", "a", "b"])
        #expect(Set((json["summary"] as? [String: Any] ?? [:]).keys) == ["compared", "identical", "equal", "close", "different",
            "only_in_a", "only_in_b", "shape_mismatches", "dtype_changes", "metadata_changes", "checkpoints_equal"])
        #expect(try ReportJSON.decoder().decode(CheckpointDiff.self, from: diff.jsonData()) == diff)
    }

    @Test("validate: per-file verdicts, problems with null tensor and hint when absent")
    func validateKeys() throws {
        var report = ValidationReport()
        report.append(.init(file: "a.safetensors", format: "safetensors", tensors: 3))
        report.append(.init(file: "b.qpk", format: "qpk", tensors: 2, problems: [
            .init(tensor: "w", rule: "crc_mismatch", message: "blob CRC32 0x1 != stored 0x2", hint: "the file is corrupt; convert it again"),
            .init(rule: "truncated", message: "file ends at byte 10, header says 20"),
        ]))
        let json = try object(report.jsonData())
        #expect(Set(json.keys) == ["files", "valid", "summary"])
        #expect(json["valid"] as? Bool == false)
        let files = try #require(json["files"] as? [[String: Any]])
        #expect(Set(files[0].keys) == ["file", "format", "tensors", "valid", "problems"])
        #expect(files[0]["valid"] as? Bool == true && files[1]["valid"] as? Bool == false)
        let problem = try #require((files[1]["problems"] as? [[String: Any]])?.last)
        #expect(Set(problem.keys) == ["tensor", "rule", "message", "hint"])
        #expect(problem["tensor"] is NSNull && problem["hint"] is NSNull)
        #expect(json["summary"] as? [String: Int] == ["files": 2, "valid": 1, "invalid": 1, "problems": 2])
        #expect(try ReportJSON.decoder().decode(ValidationReport.self, from: report.jsonData()) == report)
    }
}
