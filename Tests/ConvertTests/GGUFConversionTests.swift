import Foundation
import Testing
@testable import Convert

@Suite("Conversion to GGUF: which tensors get the block type, and the file it writes")
struct GGUFConversionTests {
    let reader = MemoryReader([
        ("enc.0.weight", [64, 256], gaussianLike(64 * 256, seed: 1, scale: 0.05)),
        ("enc.0.bias", [64], gaussianLike(64, seed: 2)),
        ("small", [8, 32], gaussianLike(256, seed: 3)),
        ("odd", [64, 100], gaussianLike(6400, seed: 4)),
    ], metadata: ["source": "memory"])

    func plan(_ type: GGMLType?, include: [Glob] = [], exclude: [Glob] = [], to url: URL) throws -> (ConversionPlan, ConversionOptions) {
        var options = ConversionOptions(include: include, exclude: exclude)
        options.ggufType = type
        let plan = try ConversionPlanner.plan(
            reader: reader, destination: url, target: OutputTarget(format: .gguf), options: options)
        return (plan, options)
    }

    @Test("a block type goes to the selected weights whose rows are whole blocks; the rest say why not")
    func selection() throws {
        let dir = try ScratchDirectory()
        let (plan, options) = try plan(.q4_0, to: dir.file("m.gguf"))
        let actions = Dictionary(uniqueKeysWithValues: plan.tensors.map { ($0.source.name, $0.action) })
        #expect(actions["enc.0.weight"] == .ggmlQuantize(.q4_0))
        #expect(actions["enc.0.bias"] == .copy)
        #expect(actions["small"] == .copy)
        #expect(actions["odd"] == .copy)
        let reasons = plan.tensors.map { GGUFPlanning.reasonKept($0.source, type: .q4_0, options: options) }
        #expect(reasons == [nil, "1-D", "fewer than 4096 elements", "row length 100 is not a multiple of 32"])
        let (k, _) = try self.plan(.q4_K, to: dir.file("k.gguf"))
        #expect(k.tensors[0].action == .ggmlQuantize(.q4_K))
        #expect(k.tensors[0].estimatedBytes == 64 * 144)
        let (excluded, _) = try self.plan(.q4_0, exclude: [Glob("enc.*")], to: dir.file("e.gguf"))
        #expect(excluded.tensors[0].action == .copy)
        let (plain, _) = try self.plan(.f16, to: dir.file("h.gguf"))
        #expect(plain.tensors.map(\.output.dtype) == [.f16, .f32, .f32, .f16])
    }

    @Test("the written file reads back with ggml types, reversed dims, source metadata and a measured SQNR")
    func writes() throws {
        let dir = try ScratchDirectory()
        let url = dir.file("m.gguf")
        let (plan, options) = try plan(.q4_K, to: url)
        let summary = try Converter(plan: plan, options: options).run(reader: reader)
        let gguf = try GGUFReader(url: url)
        #expect(gguf.ggmlType(of: "enc.0.weight") == .q4_K)
        #expect(gguf.entry(named: "enc.0.weight")?.ne == [256, 64])
        #expect(gguf.ggmlType(of: "enc.0.bias") == .f32)
        #expect(gguf.metadata["source"] == "memory")
        #expect(gguf.value(forKey: "general.quantization_version") == .uint32(2))
        let result = try #require(summary.tensors.first { $0.name == "enc.0.weight" })
        #expect(result.bytes == 64 * 144 && result.bits == 4 && result.groupSize == 256)
        let sqnr = try #require(result.sqnrDB)
        #expect(sqnr > 15 && sqnr < 40)
        // The SQNR recorded is the error of what the file holds.
        let original = reader.values["enc.0.weight"]!
        let decoded = try Dequantizer.floats(gguf.storage(of: gguf.tensor(named: "enc.0.weight")!), info: gguf.tensor(named: "enc.0.weight")!)
        let noise = zip(original, decoded).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
        let signal = original.reduce(0.0) { $0 + Double($1) * Double($1) }
        #expect(abs(10 * log10(signal / noise) - sqnr) < 1e-6)
    }

    @Test("a type qpk cannot write and a tensor GGUF has no type for are one-line errors")
    func failures() throws {
        let dir = try ScratchDirectory()
        #expect(throws: GGUFPlanning.Failure.unwritableType(.q2_K)) { _ = try plan(.q2_K, to: dir.file("x.gguf")) }
        let flags = TensorInfo(name: "mask", dtype: .bool, shape: [4])
        #expect(throws: GGUFPlanning.Failure.noGGUFType(tensor: "mask", dtype: .bool)) {
            _ = try GGUFPlanning.plan(flags, quantizedSource: false, options: ConversionOptions())
        }
    }
}
