import Foundation
import Testing
@testable import Formats
import QPKCore

/// Opens `bytes` as a file; the reader must either succeed or throw a ``SafetensorsError``.
/// Returns a description of any other outcome.
private func openNeverCrashes(_ bytes: [UInt8], at url: URL) throws -> String? {
    try Data(bytes).write(to: url)
    do {
        let reader = try SafetensorsReader(url: url)
        // A reader that opened must hand out every tensor's bytes inside the file.
        for tensor in reader.tensors {
            let data = try reader.denseBytes(of: tensor)
            guard data.count == tensor.byteCount else { return "tensor \(tensor.name) has \(data.count) bytes" }
        }
        return nil
    } catch is SafetensorsError {
        return nil
    } catch {
        return "unexpected error \(error)"
    }
}

@Suite("SafetensorsReader: hostile input never crashes")
struct SafetensorsFuzzTests {
    @Test("every truncation of a valid file is rejected with a SafetensorsError, never a crash")
    func truncations() throws {
        let original = Array(try Data(contentsOf: SafetensorsFixtures.url("mixed.safetensors")))
        let dir = try TemporaryDirectory()
        let url = dir.file("cut.safetensors")
        var accepted = 0
        for length in 0...original.count {
            if let problem = try openNeverCrashes(Array(original.prefix(length)), at: url) {
                Issue.record("length \(length): \(problem)")
            }
            if (try? SafetensorsReader(url: url)) != nil { accepted += 1 }
        }
        #expect(accepted == 1)  // only the whole file is valid
    }

    @Test("random byte flips in the length and header are rejected or accepted, never a crash")
    func byteFlips() throws {
        let original = Array(try Data(contentsOf: SafetensorsFixtures.url("mixed.safetensors")))
        let headerEnd = 8 + original.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let dir = try TemporaryDirectory()
        let url = dir.file("flipped.safetensors")
        var generator = SplitMix64(seed: 0x5AFE_7E45)
        var rejected = 0
        for _ in 0..<1500 {
            var bytes = original
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                let position = Int.random(in: 0..<headerEnd, using: &generator)
                bytes[position] = UInt8.random(in: 0...255, using: &generator)
            }
            if let problem = try openNeverCrashes(bytes, at: url) { Issue.record("\(problem)") }
            if (try? SafetensorsReader(url: url)) == nil { rejected += 1 }
        }
        #expect(rejected > 1000)
    }

    @Test("digit mutations in offsets and shapes are caught by the offset and size rules")
    func numericMutations() throws {
        let original = Array(try Data(contentsOf: SafetensorsFixtures.url("mixed.safetensors")))
        let headerEnd = 8 + original.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let digits = (8..<headerEnd).filter { (0x30...0x39).contains(original[$0]) }
        let dir = try TemporaryDirectory()
        let url = dir.file("digits.safetensors")
        var rules = Set<String>()
        var generator = SplitMix64(seed: 7)
        for position in digits {
            var bytes = original
            var replacement = UInt8.random(in: 0x30...0x39, using: &generator)
            if replacement == original[position] { replacement = replacement == 0x39 ? 0x30 : replacement + 1 }
            bytes[position] = replacement
            if let problem = try openNeverCrashes(bytes, at: url) { Issue.record("\(problem)") }
            do { _ = try SafetensorsReader(url: url) } catch let error as SafetensorsError { rules.insert(error.ruleName) }
        }
        #expect(rules.isSuperset(of: ["InvalidOffset", "TensorInvalidInfo"]))
    }
}
