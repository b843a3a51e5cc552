import Foundation
import Testing
@testable import Convert
import Formats
import QPKCore
import Quantize

/// The library refuses requests that would silently do nothing or lose data (issue 11 §4), so
/// every caller, not only the CLI, gets the same answers.
@Suite("conversion option checks")
struct OptionChecksTests {
    func reader() throws -> any CheckpointReader {
        let model = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("fixtures/models/fracast/model.safetensors")
        return try Checkpoint.open(model)
    }

    func rule(_ body: () throws -> Void) -> UsageError.Rule? {
        do {
            try body()
            return nil
        } catch let error as UsageError {
            return error.rule
        } catch {
            return nil
        }
    }

    @Test("the output path decides format and layout; options that do not fit it are errors")
    func outputTargets() throws {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory())
        #expect(try OutputTarget.forDestination(dir.appendingPathComponent("m.qpk"), maxShardSize: nil, gzipLevel: nil).format == .qpk)
        #expect(try OutputTarget.forDestination(dir.appendingPathComponent("m.h5"), maxShardSize: nil, gzipLevel: 4)
            == OutputTarget(format: .hdf5, gzipLevel: 4))
        let folder = try OutputTarget.forDestination(
            URL(fileURLWithPath: "/nonexistent-\(UUID().uuidString)/shards"), maxShardSize: 1000, gzipLevel: nil)
        #expect(folder == OutputTarget(format: .safetensors, maxShardSize: 1000))
        #expect(rule { _ = try OutputTarget.forDestination(dir.appendingPathComponent("z.qpk"), maxShardSize: 10, gzipLevel: nil) } == .notApplicable)
        #expect(rule { _ = try OutputTarget.forDestination(dir.appendingPathComponent("z.safetensors"), maxShardSize: 10, gzipLevel: nil) } == .outputLayout)
        #expect(rule { _ = try OutputTarget.forDestination(dir.appendingPathComponent("z.safetensors"), maxShardSize: nil, gzipLevel: 4) } == .notApplicable)
        #expect(rule { _ = try OutputTarget.forDestination(dir, maxShardSize: nil, gzipLevel: 4) } == .notApplicable)
    }

    @Test("globs that match nothing, misplaced flags, lossy casts and zero workers are refused")
    func refusals() throws {
        let reader = try reader()
        let qpk = OutputTarget(format: .qpk)
        let safetensors = OutputTarget(format: .safetensors)
        let destination = URL(fileURLWithPath: "/tmp/unused")
        func plan(_ options: ConversionOptions, _ target: OutputTarget) throws {
            _ = try ConversionPlanner.plan(reader: reader, destination: destination, target: target, options: options)
        }
        #expect(rule { try plan(ConversionOptions(include: [Glob("nomatch.*")]), qpk) } == .globMatchesNothing)
        #expect(rule { try plan(ConversionOptions(exclude: [Glob("core.*"), Glob("nomatch")]), qpk) } == .globMatchesNothing)
        #expect(rule { try plan(ConversionOptions(include: [Glob("core.*")]), safetensors) } == .notApplicable)
        #expect(rule { try plan(ConversionOptions(outlierMask: true), safetensors) } == .notApplicable)
        #expect(rule { try plan(ConversionOptions(dtype: .i8), safetensors) } == .lossyCast)
        #expect(rule { try plan(ConversionOptions(dtype: .f6e2m3), safetensors) } == .notApplicable)
        var zero = ConversionOptions()
        zero.workers = 0
        #expect(rule { try plan(zero, safetensors) } == .invalidNumber)
        var lossy = ConversionOptions(dtype: .i8)
        lossy.allowLossyCast = true
        try plan(lossy, safetensors)
        try plan(ConversionOptions(include: [Glob("core.*")]), qpk)
    }

    @Test("recipe flags must take effect: QPK output that quantizes something")
    func recipeFlags() throws {
        let reader = try reader()
        let destination = URL(fileURLWithPath: "/tmp/unused")
        let quantizing = try ConversionPlanner.plan(
            reader: reader, destination: destination, target: OutputTarget(format: .qpk), options: ConversionOptions())
        try ConversionChecks.checkRecipeApplies(quantizing, flags: ["--bits"])
        let copying = try ConversionPlanner.plan(
            reader: reader, destination: destination, target: OutputTarget(format: .safetensors), options: ConversionOptions())
        #expect(rule { try ConversionChecks.checkRecipeApplies(copying, flags: ["--bits"]) } == .notApplicable)
        try ConversionChecks.checkRecipeApplies(copying, flags: [])
    }

    @Test("sub-byte original dtypes dequantize to F32; others keep their dtype")
    func dequantizedDType() {
        #expect(ConversionChecks.dequantizedDType(of: TensorInfo(name: "w", dtype: .f6e2m3, shape: [4]), requested: nil) == .f32)
        #expect(ConversionChecks.dequantizedDType(of: TensorInfo(name: "w", dtype: .f4, shape: [2]), requested: nil) == .f32)
        #expect(ConversionChecks.dequantizedDType(of: TensorInfo(name: "w", dtype: .bf16, shape: [2]), requested: nil) == .bf16)
        #expect(ConversionChecks.dequantizedDType(of: TensorInfo(name: "w", dtype: .f4, shape: [2]), requested: .f16) == .f16)
    }

    @Test("ordered delivery hands values over in position order whatever the arrival order")
    func orderedDelivery() throws {
        let delivery = OrderedDelivery<Int>(capacity: 3)
        var delivered: [Int] = []
        for position in [2, 1, 0, 4, 3] {
            try delivery.submit(position * 10, at: position) { delivered.append($0) }
        }
        #expect(delivered == [0, 10, 20, 30, 40])
        final class Collected: @unchecked Sendable {
            let lock = NSLock()
            var values: [Int] = []
        }
        let collected = Collected()
        let concurrent = OrderedDelivery<Int>(capacity: 2)
        DispatchQueue.concurrentPerform(iterations: 200) { position in
            try? concurrent.submit(position, at: position) { value in
                collected.lock.lock()
                collected.values.append(value)
                collected.lock.unlock()
            }
        }
        #expect(collected.values == Array(0..<200))
    }
}
