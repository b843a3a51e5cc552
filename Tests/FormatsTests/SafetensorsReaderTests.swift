import Foundation
import Testing
@testable import Formats
import QPKCore

/// Opens `bytes` as a file and returns the validation error, or `nil` when the file is valid.
private func validationError(_ bytes: [UInt8], in directory: TemporaryDirectory) throws -> SafetensorsError? {
    let url = try directory.write(bytes)
    do {
        _ = try SafetensorsReader(url: url)
        return nil
    } catch let error as SafetensorsError {
        return error
    }
}

private let oneF32 = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#

@Suite("SafetensorsReader: the reference validator's rules, in order")
struct SafetensorsValidationRuleTests {
    @Test("1. fewer than 8 bytes is HeaderTooSmall")
    func headerTooSmall() throws {
        let dir = try TemporaryDirectory()
        for size in 0..<8 {
            let error = try validationError([UInt8](repeating: 0, count: size), in: dir)
            #expect(error == .headerTooSmall(path: dir.file("test.safetensors").path, fileSize: size))
        }
    }

    @Test("2. a declared header over 100,000,000 bytes is HeaderTooLarge, checked before the file size")
    func headerTooLarge() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("test.safetensors").path
        #expect(try validationError(safetensorsBytes(header: "{}", declaredLength: 100_000_001), in: dir)
            == .headerTooLarge(path: path, headerLength: 100_000_001, isGitLFSPointer: false))
        #expect(try validationError(safetensorsBytes(header: "{}", declaredLength: .max), in: dir)
            == .headerTooLarge(path: path, headerLength: .max, isGitLFSPointer: false))
        // Exactly 100,000,000 is allowed by rule 2 and then fails rule 3 in this small file.
        #expect(try validationError(safetensorsBytes(header: "{}", declaredLength: 100_000_000), in: dir)?.ruleName
            == "InvalidHeaderLength")
    }

    @Test("3. a header running past the end of the file is InvalidHeaderLength")
    func invalidHeaderLength() throws {
        let dir = try TemporaryDirectory()
        let bytes = safetensorsBytes(header: oneF32, buffer: [0, 0, 0, 0], declaredLength: UInt64(oneF32.utf8.count + 5))
        #expect(try validationError(bytes, in: dir) == .invalidHeaderLength(
            path: dir.file("test.safetensors").path, headerLength: UInt64(oneF32.utf8.count + 5),
            fileSize: bytes.count, isGitLFSPointer: false))
    }

    @Test("4. a header that is not UTF-8 is InvalidHeader, even when it is also bad JSON")
    func invalidHeader() throws {
        let dir = try TemporaryDirectory()
        let header: [UInt8] = Array(#"{"caf"#.utf8) + [0xE9] + Array(#"":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#.utf8)
        #expect(try validationError(safetensorsBytes(headerBytes: header, buffer: [0, 0, 0, 0]), in: dir)
            == .invalidHeader(path: dir.file("test.safetensors").path))
        #expect(try validationError(safetensorsBytes(headerBytes: [0xFF, 0xFE]), in: dir)?.ruleName == "InvalidHeader")
    }

    @Test("5. an unknown dtype is InvalidHeaderDeserialization naming the dtype")
    func invalidHeaderDeserialization() throws {
        let dir = try TemporaryDirectory()
        let error = try validationError(
            safetensorsBytes(header: #"{"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}"#, buffer: [0, 0, 0, 0]), in: dir)
        guard case let .invalidHeaderDeserialization(path, detail) = error else {
            Issue.record("expected InvalidHeaderDeserialization, got \(String(describing: error))")
            return
        }
        #expect(path == dir.file("test.safetensors").path)
        #expect(detail.contains("F33"))
    }

    @Test("6. a gap or overlap between tensors is InvalidOffset naming the tensor")
    func invalidOffset() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("test.safetensors").path
        let gap = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#
        #expect(try validationError(safetensorsBytes(header: gap, buffer: .init(repeating: 0, count: 12)), in: dir)
            == .invalidOffset(path: path, tensor: "b"))
        let notAtZero = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        #expect(try validationError(safetensorsBytes(header: notAtZero, buffer: .init(repeating: 0, count: 8)), in: dir)
            == .invalidOffset(path: path, tensor: "a"))
        let backwards = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}"#
        #expect(try validationError(safetensorsBytes(header: backwards, buffer: .init(repeating: 0, count: 4)), in: dir)
            == .invalidOffset(path: path, tensor: "b"))
        let shared = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        #expect(try validationError(safetensorsBytes(header: shared, buffer: .init(repeating: 0, count: 4)), in: dir)
            == .invalidOffset(path: path, tensor: "b"))
    }

    @Test("7. an element count that overflows is ValidationOverflow")
    func validationOverflow() throws {
        let dir = try TemporaryDirectory()
        let header = #"{"a":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904],"data_offsets":[0,4]}}"#
        #expect(try validationError(safetensorsBytes(header: header, buffer: [0, 0, 0, 0]), in: dir)
            == .validationOverflow(path: dir.file("test.safetensors").path, tensor: "a"))
        // The element count fits but the bit count does not.
        let bits = #"{"a":{"dtype":"F64","shape":[1152921504606846976],"data_offsets":[0,4]}}"#
        #expect(try validationError(safetensorsBytes(header: bits, buffer: [0, 0, 0, 0]), in: dir)?.ruleName == "ValidationOverflow")
    }

    @Test("8. a sub-byte tensor that does not fill whole bytes is MisalignedSlice")
    func misalignedSlice() throws {
        let dir = try TemporaryDirectory()
        let header = #"{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}"#
        #expect(try validationError(safetensorsBytes(header: header, buffer: [0, 0]), in: dir)
            == .misalignedSlice(path: dir.file("test.safetensors").path, tensor: "a"))
        let six = #"{"a":{"dtype":"F6_E2M3","shape":[4],"data_offsets":[0,3]}}"#
        #expect(try validationError(safetensorsBytes(header: six, buffer: [0, 0, 0]), in: dir) == nil)
    }

    @Test("9. a byte range of the wrong size is TensorInvalidInfo")
    func tensorInvalidInfo() throws {
        let dir = try TemporaryDirectory()
        let header = #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#
        #expect(try validationError(safetensorsBytes(header: header, buffer: .init(repeating: 0, count: 8)), in: dir)
            == .tensorInvalidInfo(path: dir.file("test.safetensors").path, tensor: "a"))
    }

    @Test("10. bytes left over (or missing) after the last tensor is MetadataIncompleteBuffer")
    func metadataIncompleteBuffer() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("test.safetensors").path
        let long = safetensorsBytes(header: oneF32, buffer: .init(repeating: 0, count: 5))
        #expect(try validationError(long, in: dir) == .metadataIncompleteBuffer(
            path: path, expectedSize: UInt64(long.count - 1), fileSize: long.count, isGitLFSPointer: false))
        let short = safetensorsBytes(header: oneF32, buffer: [0, 0, 0])
        #expect(try validationError(short, in: dir)?.ruleName == "MetadataIncompleteBuffer")
    }

    @Test("the rules run in the reference's order: an early rule wins over a later one")
    func ruleOrder() throws {
        let dir = try TemporaryDirectory()
        // Broken offsets (6) and a wrong size (9) and a short buffer (10): rule 6 is reported.
        let header = #"{"a":{"dtype":"F32","shape":[5],"data_offsets":[4,8]}}"#
        #expect(try validationError(safetensorsBytes(header: header), in: dir)?.ruleName == "InvalidOffset")
        // Overflow (7) in the first tensor and a misaligned second tensor (8): rule 7.
        let both = #"{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]},"b":{"dtype":"F4","shape":[1],"data_offsets":[0,0]}}"#
        #expect(try validationError(safetensorsBytes(header: both), in: dir)?.ruleName == "ValidationOverflow")
    }

    @Test("every committed invalid fixture fails with the rule the Python reference reported", arguments: try SafetensorsFixtures.expectedInvalid().sorted(by: { $0.key < $1.key }))
    func committedFixtures(file: String, rule: String) throws {
        let url = SafetensorsFixtures.url("invalid/\(file)")
        #expect(throws: SafetensorsError.self) { try SafetensorsReader(url: url) }
        do {
            _ = try SafetensorsReader(url: url)
        } catch let error as SafetensorsError {
            #expect(error.ruleName == rule)
            #expect(error.path == url.path)
            #expect(error.description.hasPrefix(url.path + ": "))
            #expect(error.description.contains(rule))
        }
    }

    @Test("all ten rules have a committed fixture")
    func everyRuleHasAFixture() throws {
        let rules = Set(try SafetensorsFixtures.expectedInvalid().values)
        #expect(rules == [
            "HeaderTooSmall", "HeaderTooLarge", "InvalidHeaderLength", "InvalidHeader",
            "InvalidHeaderDeserialization", "InvalidOffset", "ValidationOverflow", "MisalignedSlice",
            "TensorInvalidInfo", "MetadataIncompleteBuffer",
        ])
    }
}

@Suite("SafetensorsReader: error messages")
struct SafetensorsErrorMessageTests {
    @Test("a git-lfs pointer is recognised and named as such")
    func gitLFSPointer() throws {
        let url = SafetensorsFixtures.url("invalid/git-lfs-pointer.safetensors")
        do {
            _ = try SafetensorsReader(url: url)
            Issue.record("a git-lfs pointer was accepted")
        } catch let error as SafetensorsError {
            guard case .headerTooLarge(_, _, true) = error else {
                Issue.record("expected HeaderTooLarge flagged as git-lfs, got \(error)")
                return
            }
            #expect(error.description.contains("git-lfs pointer"))
            #expect(error.description.contains("git lfs pull"))
            #expect(!error.description.contains("\n"))
        }
    }

    @Test("truncation-style failures suggest a git-lfs pointer or a truncated download")
    func truncationHint() {
        let errors: [SafetensorsError] = [
            .headerTooLarge(path: "m.safetensors", headerLength: 1 << 40, isGitLFSPointer: false),
            .invalidHeaderLength(path: "m.safetensors", headerLength: 100, fileSize: 50, isGitLFSPointer: false),
            .metadataIncompleteBuffer(path: "m.safetensors", expectedSize: 100, fileSize: 50, isGitLFSPointer: false),
        ]
        for error in errors {
            #expect(error.description.contains("looks like a git-lfs pointer or a truncated download"))
            #expect(error.description.hasPrefix("m.safetensors: \(error.ruleName): "))
        }
    }

    @Test("per-tensor errors name the file, the tensor and the rule on one line")
    func tensorErrors() {
        let errors: [SafetensorsError] = [
            .invalidOffset(path: "m.safetensors", tensor: "w"),
            .validationOverflow(path: "m.safetensors", tensor: "w"),
            .misalignedSlice(path: "m.safetensors", tensor: "w"),
            .tensorInvalidInfo(path: "m.safetensors", tensor: "w"),
        ]
        for error in errors {
            #expect(error.description.hasPrefix("m.safetensors: tensor 'w': \(error.ruleName): "))
            #expect(error.tensor == "w")
            #expect(!error.description.contains("\n"))
        }
    }
}

@Suite("SafetensorsReader: the header is parsed as strictly as serde")
struct SafetensorsStrictHeaderTests {
    private func rule(_ header: String, buffer: Int = 4) throws -> String? {
        let dir = try TemporaryDirectory()
        return try validationError(safetensorsBytes(header: header, buffer: .init(repeating: 0, count: buffer)), in: dir)?.ruleName
    }

    @Test("duplicate keys are rejected, in tensors, in fields and in __metadata__")
    func duplicateKeys() throws {
        #expect(try rule(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#)
            == "InvalidHeaderDeserialization")
        #expect(try rule(#"{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#) == "InvalidHeaderDeserialization")
        #expect(try rule(#"{"__metadata__":{"k":"1","k":"2"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#)
            == "InvalidHeaderDeserialization")
    }

    @Test("integers must be plain non-negative integers: 1.0, 1e0, -1, 01 and 2^64 are not")
    func integers() throws {
        for shape in ["1.0", "1e0", "-1", "01", "-0", "18446744073709551616", "\"1\"", "true", "null"] {
            #expect(try rule(#"{"a":{"dtype":"F32","shape":[\#(shape)],"data_offsets":[0,4]}}"#) == "InvalidHeaderDeserialization",
                    "shape [\(shape)]")
        }
    }

    @Test("whitespace around the object is accepted; NUL padding, BOM and trailing text are not")
    func padding() throws {
        #expect(try rule("  \n\t" + oneF32 + "\r\n    ") == nil)
        #expect(try rule(oneF32 + "\0\0\0") == "InvalidHeaderDeserialization")
        #expect(try rule("\u{FEFF}" + oneF32) == "InvalidHeaderDeserialization")
        #expect(try rule(oneF32 + " x") == "InvalidHeaderDeserialization")
        #expect(try rule("\u{0C}" + oneF32) == "InvalidHeaderDeserialization")
    }

    @Test("JSON syntax errors are rejected")
    func syntax() throws {
        for header in [
            "", "[]", "null", "\"a\"", #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},}"#,
            #"{"a":{"dtype":"F32","shape":[1,],"data_offsets":[0,4]}}"#, #"{'a':1}"#, "{",
            #"{"a\ud800":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
            "{\"a\tb\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
            String(repeating: "[", count: 200) + String(repeating: "]", count: 200),
            "{\"x\":" + String(repeating: "[", count: 200) + String(repeating: "]", count: 200) + "}",
        ] {
            #expect(try rule(header) == "InvalidHeaderDeserialization", "\(header.prefix(40))")
        }
    }

    @Test("fields: missing is an error, unknown is ignored, data_offsets needs exactly two")
    func fields() throws {
        #expect(try rule(#"{"a":{"dtype":"F32","data_offsets":[0,4]}}"#) == "InvalidHeaderDeserialization")
        #expect(try rule(#"{"a":{"dtype":"F32","shape":[1]}}"#) == "InvalidHeaderDeserialization")
        #expect(try rule(#"{"a":{"shape":[1],"data_offsets":[0,4]}}"#) == "InvalidHeaderDeserialization")
        #expect(try rule(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,4]}}"#) == "InvalidHeaderDeserialization")
        #expect(try rule(#"{"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}"#) == "InvalidHeaderDeserialization")
        #expect(try rule(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":{"x":[1.5]}}}"#) == nil)
        #expect(try rule(#"{"a":[1]}"#) == "InvalidHeaderDeserialization")
    }

    @Test("__metadata__ must be null or an object of strings")
    func metadata() throws {
        #expect(try rule(#"{"__metadata__":null,"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#) == nil)
        #expect(try rule(#"{"__metadata__":{"x":1},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#) == "InvalidHeaderDeserialization")
        #expect(try rule(#"{"__metadata__":["x"],"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#) == "InvalidHeaderDeserialization")
        #expect(try rule(#"{"__metadata__":{"x":null},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#) == "InvalidHeaderDeserialization")
    }

    @Test("escapes in names are decoded; scalars, empty tensors and an empty header are valid")
    func validCorners() throws {
        let dir = try TemporaryDirectory()
        let header = #"{"a\u0041\/\ud83d\ude00":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"e":{"dtype":"F16","shape":[0,3],"data_offsets":[4,4]}}"#
        let url = try dir.write(safetensorsBytes(header: header, buffer: [0, 0, 0x60, 0x40]))
        let reader = try SafetensorsReader(url: url)
        #expect(reader.tensors.map(\.name) == ["aA/😀", "e"])
        #expect(reader.tensors[0].shape == [])
        #expect(reader.tensors[1].shape == [0, 3])
        let value = try reader.denseBytes(of: reader.tensors[0]).withUnsafeBytes { $0.loadUnaligned(as: Float.self) }
        #expect(value == 3.5)
        #expect(try reader.denseBytes(of: reader.tensors[1]).count == 0)
        #expect(try rule("{}", buffer: 0) == nil)
        #expect(try rule("{}", buffer: 1) == "MetadataIncompleteBuffer")
    }
}

@Suite("SafetensorsReader: files written by the Python reference")
struct SafetensorsFixtureReadTests {
    private func tensor(_ dtype: String) throws -> (TensorInfo, TensorBytes) {
        let reader = try SafetensorsReader(url: SafetensorsFixtures.url("dtype_\(dtype).safetensors"))
        let info = try #require(reader.tensors.first)
        #expect(reader.tensors.count == 1)
        #expect(info.name == "x")
        #expect(info.dtype.rawValue == dtype)
        #expect(info.shape == [2, 4])
        return (info, try reader.denseBytes(of: info))
    }

    private func floats(_ values: [Float]) -> [String] {
        values.map { $0.isNaN ? "nan" : "\($0.sign == .minus ? "-" : "+")\($0.magnitude)" }
    }

    @Test("F32, F64, F16 and BF16 keep 0, -0, NaN, ±Inf and the smallest subnormal")
    func ieeeFloats() throws {
        let f32 = try tensor("F32").1
        let v32 = loadValues(f32, as: UInt32.self).map(Float.init(bitPattern:))
        #expect(floats(v32) == floats([0, -0.0, 1, -2.5, .nan, .infinity, -.infinity, .leastNonzeroMagnitude]))
        let f64 = loadValues(try tensor("F64").1, as: UInt64.self).map(Double.init(bitPattern:))
        #expect(f64[7] == .leastNonzeroMagnitude && f64[3] == -2.5 && f64[4].isNaN && f64[6] == -.infinity)
        let f16 = loadValues(try tensor("F16").1, as: UInt16.self).map { Float(Float16(bitPattern: $0)) }
        #expect(floats(f16) == floats([0, -0.0, 1, -2.5, .nan, .infinity, -.infinity, Float(Float16.leastNonzeroMagnitude)]))
        let bf16 = loadValues(try tensor("BF16").1, as: UInt16.self)
        #expect(bf16 == [0x0000, 0x8000, 0x3F80, 0xC020, bf16[4], 0x7F80, 0xFF80, 0x0001])
        #expect(FloatCodec.float(fromBFloat16: bf16[4]).isNaN)
    }

    @Test("the five float8 types decode to the values the reference wrote", arguments: [
        ("F8_E4M3", [0, -0.0, 1, -2.5, Float.nan, 448, -448, 0x1p-9]),
        ("F8_E5M2", [0, -0.0, 1, -2.5, Float.nan, .infinity, -.infinity, 0x1p-16]),
        ("F8_E4M3FNUZ", [0, 0.5, 1, -2.5, Float.nan, 240, -240, 0x1p-10]),
        ("F8_E5M2FNUZ", [0, 0.5, 1, -2.5, Float.nan, 57344, -57344, 0x1p-17]),
        ("F8_E8M0", [1, 2, 0.5, 0x1p-127, 0x1p127, Float.nan, 4, 0.25]),
    ])
    func float8(dtype: String, expected: [Float]) throws {
        let (info, bytes) = try tensor(dtype)
        let decoded = bytes.withUnsafeBytes { $0.map { FloatCodec.float(fromFloat8: $0, dtype: info.dtype) } }
        #expect(floats(decoded) == floats(expected))
    }

    @Test("integers keep their extremes")
    func integers() throws {
        #expect(loadValues(try tensor("I8").1, as: Int8.self) == [.min, .max, 0, 1, 2, 3, -1, 5])
        #expect(loadValues(try tensor("U8").1, as: UInt8.self) == [.min, .max, 0, 1, 2, 3, 4, 5])
        #expect(loadValues(try tensor("I16").1, as: Int16.self) == [.min, .max, 0, 1, 2, 3, -1, 5])
        #expect(loadValues(try tensor("U16").1, as: UInt16.self) == [.min, .max, 0, 1, 2, 3, 4, 5])
        #expect(loadValues(try tensor("I32").1, as: Int32.self) == [.min, .max, 0, 1, 2, 3, -1, 5])
        #expect(loadValues(try tensor("U32").1, as: UInt32.self) == [.min, .max, 0, 1, 2, 3, 4, 5])
        #expect(loadValues(try tensor("I64").1, as: Int64.self) == [.min, .max, 0, 1, 2, 3, -1, 5])
        #expect(loadValues(try tensor("U64").1, as: UInt64.self) == [.min, .max, 0, 1, 2, 3, 4, 5])
    }

    @Test("BOOL, C64 and packed F4 keep their bytes")
    func otherTypes() throws {
        #expect(loadValues(try tensor("BOOL").1, as: UInt8.self) == [1, 0, 1, 1, 0, 0, 1, 0])
        let c64 = loadValues(try tensor("C64").1, as: UInt32.self).map(Float.init(bitPattern:))
        #expect(c64.count == 16)
        #expect(Array(c64[0..<2]) == [1, 2])
        #expect(c64[2] == -3.5 && c64[4].isNaN && c64[5] == .infinity && c64[9] == -8)
        #expect(loadValues(try tensor("F4").1, as: UInt8.self) == [0x10, 0x32, 0x54, 0x76])
    }

    @Test("the mixed file: offset order, metadata, a scalar, an empty tensor and special values")
    func mixed() throws {
        let reader = try SafetensorsReader(url: SafetensorsFixtures.url("mixed.safetensors"))
        #expect(reader.format == .safetensors)
        #expect(reader.tensors.map(\.name) == [
            "ids", "empty", "encoder.layer.0.weight", "noise", "scalar", "special", "embeddings.word", "encoder.layer.0.bias",
        ])
        #expect(reader.metadata == [
            "format": "pt", "source": "qpk fixtures/gen_safetensors.py", "path/with/slashes": "a/b",
        ])
        let weight = try #require(reader.tensor(named: "encoder.layer.0.weight"))
        #expect(weight.shape == [4, 8] && weight.dtype == .f32)
        let values = loadValues(try reader.denseBytes(of: weight), as: UInt32.self).map(Float.init(bitPattern:))
        #expect(values == (0..<32).map { Float($0) * 0.25 - 4 })
        let scalar = try #require(reader.tensor(named: "scalar"))
        #expect(scalar.shape == [] && scalar.elementCount == 1)
        #expect(loadValues(try reader.denseBytes(of: scalar), as: UInt32.self).map(Float.init(bitPattern:)) == [3.5])
        let empty = try #require(reader.tensor(named: "empty"))
        #expect(empty.shape == [0, 4] && empty.elementCount == 0)
        #expect(try reader.denseBytes(of: empty).count == 0)
        let special = loadValues(try reader.denseBytes(of: try #require(reader.tensor(named: "special"))), as: UInt32.self)
            .map(Float.init(bitPattern:))
        #expect(special[0].isNaN && special[1] == .infinity && special[2] == -.infinity)
        #expect(special[3] == .leastNonzeroMagnitude && special[4].sign == .minus && special[5] == .greatestFiniteMagnitude)
        let bias = loadValues(try reader.denseBytes(of: try #require(reader.tensor(named: "encoder.layer.0.bias"))), as: UInt16.self)
        let linspace: [Float16] = (0..<8).map { (i: Int) -> Float16 in Float16(-1.0 + 2.0 * Double(i) / 7.0) }
        let decodedBias: [Float16] = bias.map { Float16(bitPattern: $0) }
        #expect(decodedBias == linspace)
        let ids = loadValues(try reader.denseBytes(of: try #require(reader.tensor(named: "ids"))), as: Int64.self)
        #expect(ids == [0, -1, 1 << 40, -(1 << 40), 7])
        let words = loadValues(try reader.denseBytes(of: try #require(reader.tensor(named: "embeddings.word"))), as: UInt16.self)
        #expect(words.map(FloatCodec.float(fromBFloat16:)) == (0..<15).map { Float($0) / 8 })
    }

    @Test("asking for a tensor the file does not have is noSuchTensor")
    func noSuchTensor() throws {
        let reader = try SafetensorsReader(url: SafetensorsFixtures.url("mixed.safetensors"))
        #expect(throws: CheckpointError.noSuchTensor(reader.url.path, "missing")) {
            try reader.storage(of: TensorInfo(name: "missing", dtype: .f32, shape: [1]))
        }
    }

    @Test("concurrent storage(of:) calls return the right bytes")
    func concurrentReads() async throws {
        let reader = try SafetensorsReader(url: SafetensorsFixtures.url("mixed.safetensors"))
        let expected = try reader.tensors.map { try Array(reader.denseBytes(of: $0).bytes) }
        let mismatches = await withTaskGroup(of: Int.self) { group in
            for round in 0..<64 {
                group.addTask {
                    let index = round % reader.tensors.count
                    guard let bytes = try? reader.denseBytes(of: reader.tensors[index]) else { return 1 }
                    return Array(bytes.bytes) == expected[index] ? 0 : 1
                }
            }
            return await group.reduce(0, +)
        }
        #expect(mismatches == 0)
    }

    @Test("a real checkpoint opens and covers its file")
    func realModel() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("fixtures/models/fracast/model.safetensors")
        let reader = try SafetensorsReader(url: url)
        let covered = reader.tensors.reduce(0) { $0 + $1.byteCount }
        #expect(8 + reader.headerLength + covered == reader.file.bytes.count)
    }
}

@Suite("SafetensorsReader.looksLikeSafetensors: magic-byte detection")
struct SafetensorsDetectionTests {
    private func looks(_ bytes: [UInt8], fileSize: Int? = nil) -> Bool {
        bytes.withUnsafeBytes { SafetensorsReader.looksLikeSafetensors($0, fileSize: fileSize ?? bytes.count) }
    }

    @Test("every valid fixture is detected")
    func fixtures() throws {
        for name in try FileManager.default.contentsOfDirectory(atPath: SafetensorsFixtures.root.path)
        where name.hasSuffix(".safetensors") {
            let data = try Data(contentsOf: SafetensorsFixtures.url(name))
            #expect(looks(Array(data.prefix(64)), fileSize: data.count), "\(name)")
        }
    }

    @Test("other files are not")
    func others() throws {
        let lfs = try Data(contentsOf: SafetensorsFixtures.url("invalid/git-lfs-pointer.safetensors"))
        #expect(!looks(Array(lfs)))
        #expect(!looks([0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0]))  // HDF5 signature
        #expect(!looks(Array("QPK\u{0}".utf8)))
        #expect(!looks(safetensorsBytes(header: "[]")))
        #expect(!looks(safetensorsBytes(header: "{}", declaredLength: 64)))  // header past the end
        #expect(looks(safetensorsBytes(header: "  {}")))
    }
}
