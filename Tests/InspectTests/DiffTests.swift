import Foundation
import Testing
@testable import Inspect
import QPKCore
import Formats
import Quantize

@Suite("CheckpointDiff on constructed pairs")
struct DiffTests {
    let base: [Float] = (0..<24).map { Float($0) * 0.25 - 2 }

    @Test("A checkpoint equals itself: every tensor identical, exit status 0")
    func identical() throws {
        let a = MemoryReader().add("w", base, shape: [4, 6]).add("b", [1, 2, 3])
        let diff = try CheckpointDiff.compare(a, a)
        #expect(diff.tensors.allSatisfy { $0.status == .identical })
        #expect(diff.tensors.first?.sqnrDB == .infinity && diff.tensors.first?.cosine == 1)
        #expect(diff.summary.checkpointsEqual && diff.exitStatus == 0)
    }

    @Test("One changed element: reported with its multi-dimensional index and both values")
    func oneChangedElement() throws {
        var changed = base
        changed[13] = 100  // row 2, column 1 of a 4×6 matrix
        let a = MemoryReader().add("w", base, shape: [4, 6]).add("same", [1, 2])
        let b = MemoryReader().add("w", changed, shape: [4, 6]).add("same", [1, 2])
        let diff = try CheckpointDiff.compare(a, b)
        let w = try #require(diff.tensors.first)
        #expect(w.name == "w" && w.status == .different)
        #expect(w.outOfTolerance == 1)
        #expect(w.worst == .init(index: [2, 1], flatIndex: 13, a: 1.25, b: 100))
        #expect(w.maxAbs == 98.75)
        #expect(isClose(w.meanAbs, 98.75 / 24, relative: 1e-12))
        // numpy: a = arange(24)*.25-2; b = a.copy(); b[13] = 100
        let sumA2 = base.reduce(0.0) { $0 + Double($1) * Double($1) }
        #expect(isClose(w.relativeL2, 98.75 / sumA2.squareRoot(), relative: 1e-12))
        #expect(isClose(w.sqnrDB, 10 * log10(sumA2 / (98.75 * 98.75)), relative: 1e-12))
        let sumB2 = changed.reduce(0.0) { $0 + Double($1) * Double($1) }
        let dot = zip(base, changed).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        #expect(isClose(w.cosine, dot / (sumA2 * sumB2).squareRoot(), relative: 1e-12))
        #expect(diff.tensors.last?.status == .identical)
        #expect(!diff.summary.checkpointsEqual && diff.exitStatus == 1)
    }

    @Test("Tensors are sorted by relative change, largest first")
    func sortedByRelativeChange() throws {
        let a = MemoryReader().add("small", [1, 1, 1, 1]).add("large", [1, 1, 1, 1]).add("none", [5])
        let b = MemoryReader().add("small", [1, 1, 1, 1.01]).add("large", [1, 1, 1, 3]).add("none", [5])
        let diff = try CheckpointDiff.compare(a, b)
        #expect(diff.tensors.map(\.name) == ["large", "small", "none"])
    }

    @Test("A renamed tensor is only-in-A and only-in-B, and lines up with a map rule")
    func renamedTensor() throws {
        let a = MemoryReader().add("model.encoder.w", base).add("head", [1])
        let b = MemoryReader().add("encoder.w", base).add("head", [1])
        let plain = try CheckpointDiff.compare(a, b)
        #expect(plain.onlyInA == ["model.encoder.w"] && plain.onlyInB == ["encoder.w"])
        #expect(plain.exitStatus == 1)

        let mapped = try CheckpointDiff.compare(a, b, options: DiffOptions(nameMap: NameMap([NameMap.Rule(parsing: "model.:")])))
        #expect(mapped.onlyInA.isEmpty && mapped.onlyInB.isEmpty)
        let encoder = try #require(mapped.tensors.first { $0.name == "encoder.w" })
        #expect(encoder.nameA == "model.encoder.w" && encoder.nameB == "encoder.w" && encoder.status == .identical)
        #expect(mapped.exitStatus == 0)
    }

    @Test("Map rules: first matching prefix wins, both sides are rewritten, collisions are errors")
    func mapRules() throws {
        let map = NameMap([try .init(parsing: "bert.:"), try .init(parsing: "enc:encoder")])
        #expect(map.apply(to: "bert.enc.w") == "enc.w")
        #expect(map.apply(to: "enc.w") == "encoder.w")
        #expect(map.apply(to: "head") == "head")
        #expect(throws: DiffError.invalidMapRule("nocolon")) { try NameMap.Rule(parsing: "nocolon") }
        #expect(throws: DiffError.invalidMapRule(":x")) { try NameMap.Rule(parsing: ":x") }
        let clash = MemoryReader().add("model.w", [1]).add("w", [1])
        #expect(throws: DiffError.ambiguousMapping("/tmp/memory.safetensors", "model.w", "w", "w")) {
            try CheckpointDiff.compare(clash, clash, options: DiffOptions(nameMap: NameMap([.init(from: "model.", to: "")])))
        }
    }

    @Test("A dtype change is compared by value and reported")
    func dtypeChange() throws {
        let values: [Float] = [0.5, -1.25, 3, 0]
        let rounded: [Float] = [0.5, -1.25, 3.0001, 0]
        let a = MemoryReader().add("exact", values).add("lossy", rounded)
        let b = MemoryReader().add("exact", values, dtype: .f16).add("lossy", rounded, dtype: .bf16)
        let diff = try CheckpointDiff.compare(a, b)
        let exact = try #require(diff.tensors.first { $0.name == "exact" })
        #expect(exact.status == .equal && exact.dtypeA == "F32" && exact.dtypeB == "F16" && exact.dtypeChanged)
        let lossy = try #require(diff.tensors.first { $0.name == "lossy" })
        #expect(lossy.dtypeB == "BF16" && lossy.status == .different)  // 3.0001 → 3.0 in bf16: 1e-4 > 1e-5·3
        #expect(lossy.worst?.index == [2] && lossy.worst?.b == 3)
        #expect(diff.summary.dtypeChanges == 2 && diff.exitStatus == 1)
        let loose = try CheckpointDiff.compare(a, b, options: DiffOptions(tolerance: Tolerance(relative: 1e-3)))
        #expect(loose.tensors.first { $0.name == "lossy" }?.status == .close && loose.exitStatus == 0)
    }

    @Test("A shape change is a structural mismatch, not compared by value")
    func shapeChange() throws {
        let a = MemoryReader().add("w", base, shape: [4, 6])
        let b = MemoryReader().add("w", base, shape: [6, 4])
        let diff = try CheckpointDiff.compare(a, b)
        #expect(diff.tensors.isEmpty)
        #expect(diff.shapeMismatches == [.init(name: "w", nameA: "w", nameB: "w", dtypeA: "F32", dtypeB: "F32", shapeA: [4, 6], shapeB: [6, 4])])
        #expect(diff.exitStatus == 1)
    }

    @Test("Metadata differences are reported but do not decide equality")
    func metadataDifferences() throws {
        let a = MemoryReader(metadata: ["format": "pt", "only_a": "1"]).add("w", [1])
        let b = MemoryReader(metadata: ["format": "np"]).add("w", [1])
        let diff = try CheckpointDiff.compare(a, b)
        #expect(diff.metadata == [.init(key: "format", a: "pt", b: "np"), .init(key: "only_a", a: "1", b: nil)])
        #expect(diff.exitStatus == 0)
    }

    @Test("A quantized tensor is dequantized and compared with its source")
    func quantizedAgainstDense() throws {
        let q = smallQuantized(name: "w")
        let exact: [Float] = (0..<8).map { (Float($0) - 8) * 0.5 }
        var source = exact
        source[5] += 0.1
        let a = MemoryReader().add("w", source, shape: [2, 4])
        let b = MemoryReader(format: .qpk)
        b.add(q)
        let diff = try CheckpointDiff.compare(a, b)
        let w = try #require(diff.tensors.first)
        #expect(w.status == .different && w.worst?.index == [1, 1])
        #expect(isClose(w.maxAbs, Double(source[5]) - Double(exact[5]), relative: 1e-12))
    }

    @Test("Tensors larger than one chunk: worst element found across chunks, first on ties")
    func multiChunk() throws {
        let n = 2_500_000
        var x = [Float](repeating: 1, count: n)
        let a = MemoryReader().add("big", x)
        x[1_234_567] = 1.5
        x[2_400_000] = 1.5
        let b = MemoryReader().add("big", x)
        let t = try #require(try CheckpointDiff.compare(a, b).tensors.first)
        #expect(t.outOfTolerance == 2 && t.worst?.flatIndex == 1_234_567)
        #expect(isClose(t.meanAbs, 1.0 / Double(n), relative: 1e-12))
    }

    @Test("The progress hook is called once per compared tensor")
    func progress() throws {
        let calls = Counter()
        let a = MemoryReader().add("x", [1]).add("y", [2]).add("z", [3])
        _ = try CheckpointDiff.compare(a, a, options: DiffOptions(progress: { _, total, _ in
            #expect(total == 3)
            _ = calls.increment()
        }))
        #expect(calls.increment() == 4)
    }
}

@Suite("Tolerance follows numpy.allclose")
struct ToleranceTests {
    @Test("|a − b| ≤ atol + rtol·|b|, asymmetric in b, defaults rtol 1e-5 and atol 1e-8")
    func closeness() {
        let t = Tolerance()
        #expect(t.relative == 1e-5 && t.absolute == 1e-8)
        // numpy.isclose(1e4 + 0.1, 1e4) → True (0.1 ≤ 1e-8 + 0.1); 0.11 → False.
        #expect(t.isClose(10000.1, 10000))
        #expect(!t.isClose(10000.11, 10000))
        // Asymmetry: isclose(100, 0.0) is False for any rtol < 1, isclose(0, 1e-9) is True.
        #expect(!Tolerance(relative: 0.5).isClose(100, 0))
        #expect(t.isClose(0, 1e-9))
        #expect(!t.isClose(0, 1e-7))
        #expect(Tolerance(relative: 0, absolute: 0).isClose(-0.0, 0))
    }

    @Test("NaN equals nothing unless equal_nan; infinities equal only with the same sign")
    func nonFinite() {
        let t = Tolerance()
        #expect(!t.isClose(.nan, .nan))
        #expect(Tolerance(equalNaN: true).isClose(.nan, .nan))
        #expect(!Tolerance(equalNaN: true).isClose(.nan, 1))
        #expect(t.isClose(.infinity, .infinity))
        #expect(!t.isClose(.infinity, -.infinity))
        #expect(!t.isClose(.infinity, .greatestFiniteMagnitude))
        #expect(!Tolerance(relative: 1e30, absolute: 1e30).isClose(1, .infinity))
    }

    @Test("Diff counts NaN pairs as mismatches by default and forgives them with equal_nan")
    func diffNaNHandling() throws {
        let a = MemoryReader().add("w", [1, .nan, .infinity, 4], dtype: .f32)
        let b = MemoryReader().add("w", [1, .nan, .infinity, 4], dtype: .f16)
        let strict = try #require(try CheckpointDiff.compare(a, b).tensors.first)
        #expect(strict.status == .different && strict.outOfTolerance == 1 && strict.nonFiniteMismatches == 1)
        #expect(strict.worst?.index == [1] && strict.worst?.a.isNaN == true)
        #expect(strict.maxAbs == 0 && strict.sqnrDB == .infinity)
        let lenient = try #require(try CheckpointDiff.compare(a, b, options: DiffOptions(tolerance: Tolerance(equalNaN: true))).tensors.first)
        #expect(lenient.status == .equal && lenient.outOfTolerance == 0)
        let c = MemoryReader().add("w", [1, .nan, -.infinity, 4], dtype: .f16)
        let signFlip = try #require(try CheckpointDiff.compare(a, c, options: DiffOptions(tolerance: Tolerance(equalNaN: true))).tensors.first)
        #expect(signFlip.status == .different && signFlip.worst?.index == [2])
    }

    @Test("Byte-identical tensors with NaN are identical (bytes, like cmp), whatever equal_nan says")
    func identicalBytesWithNaN() throws {
        let a = MemoryReader().add("w", [.nan, 1])
        #expect(try CheckpointDiff.compare(a, a).tensors.first?.status == .identical)
    }
}
