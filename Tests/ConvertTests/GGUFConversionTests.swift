import Foundation
import Testing
@testable import Convert
import QPKCore
import Formats
import Quantize

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

    func optionsWith(_ type: GGMLType) -> ConversionOptions {
        var options = ConversionOptions()
        options.ggufType = type
        return options
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
        // Rows of 96 are whole 32-blocks but not 256-blocks: llama.cpp's fallback, Q5_0 for Q4_K
        // and Q8_0 for Q6_K; rows of 100 are neither and stay F32.
        let wide = TensorInfo(name: "w96", dtype: .f32, shape: [64, 96])
        #expect(try GGUFPlanning.plan(wide, quantizedSource: false, options: optionsWith(.q4_K)).action == .ggmlQuantize(.q5_0))
        #expect(try GGUFPlanning.plan(wide, quantizedSource: false, options: optionsWith(.q6_K)).action == .ggmlQuantize(.q8_0))
        #expect(k.tensors[3].action == .copy)
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
        #expect(result.bytes == 64 * 144 && result.ggmlType == "Q4_K")
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

@Suite("GGUF to GGUF: stored blocks are kept byte for byte unless --type selects them")
struct GGUFToGGUFTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("fixtures/gguf")

    func convert(_ name: String, type: GGMLType?, include: [Glob] = [], in dir: ScratchDirectory) throws -> (GGUFReader, GGUFReader) {
        let source = try GGUFReader(url: Self.fixtures.appendingPathComponent(name))
        var options = ConversionOptions(include: include)
        options.ggufType = type
        let url = dir.file("out-\(name)")
        let plan = try ConversionPlanner.plan(reader: source, destination: url, target: OutputTarget(format: .gguf), options: options)
        _ = try Converter(plan: plan, options: options).run(reader: source)
        return (source, try GGUFReader(url: url))
    }

    @Test("without --type every block tensor is copied, types the reader cannot decode included")
    func copies() throws {
        let dir = try ScratchDirectory()
        for name in ["types.gguf", "undecodable.gguf"] {
            let (source, output) = try convert(name, type: nil, in: dir)
            for tensor in source.tensors where source.ggmlType(of: tensor.name)!.isBlockQuantized {
                #expect(output.ggmlType(of: tensor.name) == source.ggmlType(of: tensor.name))
                #expect(Array(try output.storedBytes(of: tensor.name).bytes) == Array(try source.storedBytes(of: tensor.name).bytes))
            }
            #expect(output.metadata["general.architecture"] == "qpk-fixture")
        }
    }

    @Test("--type re-encodes the selected tensors from their decoded values and copies the rest")
    func requantizes() throws {
        let dir = try ScratchDirectory()
        let (source, output) = try convert("types.gguf", type: .q8_0, include: [Glob("Q4_K")], in: dir)
        #expect(output.ggmlType(of: "Q4_K") == .q8_0)
        #expect(output.ggmlType(of: "Q6_K") == .q6_K)
        let original = try Dequantizer.floats(source.storage(of: source.tensor(named: "Q4_K")!), info: source.tensor(named: "Q4_K")!)
        let requantized = try Dequantizer.floats(output.storage(of: output.tensor(named: "Q4_K")!), info: output.tensor(named: "Q4_K")!)
        let worst = zip(original, requantized).map { abs($0 - $1) }.max()!
        #expect(worst <= (original.map(abs).max()! / 127) * 0.51 + 1e-6)
    }
}
