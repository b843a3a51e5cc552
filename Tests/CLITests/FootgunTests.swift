#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import Formats
import QPKCore

/// Issue 11's reproducers, each run against the real binary: no crash, no hang, no debris, no
/// loss, no silent no-op, one exit-status rule (spec/cli.md).
@Suite("qpk never crashes, hangs, leaves debris or silently does nothing", .serialized)
struct FootgunTests {
    let model = QpkProcess.demoModel.path

    /// The names in `dir`, hidden ones included, sorted.
    func contents(_ dir: TemporaryDirectory) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.url.path).sorted()
    }

    func sha256(_ path: String) throws -> String {
        SHA256Hex.digest(of: [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
    }

    // MARK: Crash: sub-byte original dtypes

    /// A valid QPK whose affine tensor's original dtype is F6_E2M3 (spec §4.2 allows any float
    /// dtype), plus a raw F32 tensor.
    func writeSubByteQPK(_ path: String) throws {
        let w = TensorInfo(name: "w", dtype: .f6e2m3, shape: [2, 4])
        let b = TensorInfo(name: "b", dtype: .f32, shape: [2])
        let writer = try QPKWriter(
            url: URL(fileURLWithPath: path), tensors: [w, b], metadata: [:], recipe: ["bits": .integer(4)],
            provenance: QPKProvenance(sources: [], qpkVersion: "test", createdBy: "FootgunTests"), overwrite: false)
        let quantized = QuantizedTensor(
            info: w, layout: QuantizationLayout(scheme: .affine, bits: 4, groupSize: 4),
            codes: [0x10, 0x32, 0x54, 0x76], scales: [0.5, 0.25], zeros: [8, 8], method: "minmax")
        try writer.write(w, storage: .quantized(quantized))
        let raw: [Float] = [1, -2]
        try writer.write(b, storage: .dense(TensorBytes(copying: raw.withUnsafeBytes { [UInt8]($0) })))
        try writer.finish()
    }

    @Test("a QPK tensor quantized from F6_E2M3 dequantizes to F32 (spec §4.2), leaving no temp file")
    func subByteOriginalDType() throws {
        let dir = try TemporaryDirectory()
        let qpk = dir.path("f6.qpk")
        try writeSubByteQPK(qpk)
        #expect(try QpkProcess.run(["validate", qpk]).status == 0)
        for output in ["f6.safetensors", "f6.h5"] {
            let result = try QpkProcess.run(["convert", qpk, dir.path(output), "--json"])
            #expect(result.status == 0, "\(result.stderr)")
            let inspect = try QpkProcess.run(["inspect", dir.path(output), "--json"])
            let report = try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [String: Any]
            let tensors = report?["tensors"] as? [[String: Any]] ?? []
            #expect(tensors.first { $0["name"] as? String == "w" }?["dtype"] as? String == "F32")
        }
        // The codes 0…7 with scale 0.5/0.25 and zero-point 8 dequantize exactly.
        let diff = try QpkProcess.run(["diff", qpk, dir.path("f6.safetensors")])
        #expect(diff.status == 0, "\(diff.stdout)")
        let refused = try QpkProcess.run(["convert", qpk, dir.path("x.safetensors"), "--dtype", "f6_e2m3"])
        #expect(refused.status == 2)
        #expect(refused.stderr.split(separator: "\n").count == 1)
        #expect(try contents(dir) == ["f6.h5", "f6.qpk", "f6.safetensors"])
    }

    // MARK: Hang: non-regular files

    /// Runs qpk, killing it after `seconds` (a hang must fail the test, not block the suite).
    func runBounded(_ arguments: [String], seconds: Double = 20) throws -> (QpkProcess.Result, timedOut: Bool) {
        let process = Process()
        process.executableURL = QpkProcess.binary
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let done = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in done.signal() }
        try process.run()
        let timedOut = done.wait(timeout: .now() + seconds) == .timedOut
        if timedOut {
            kill(process.processIdentifier, SIGKILL)
            done.wait()
        }
        let result = QpkProcess.Result(
            status: process.terminationStatus,
            stdout: String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
            stderr: String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
        return (result, timedOut)
    }

    @Test("a FIFO as input, or as a shard, is refused at once by every command (exit 2, one line)")
    func fifoInputs() throws {
        let dir = try TemporaryDirectory()
        let fifo = dir.path("pipe.safetensors")
        #expect(mkfifo(fifo, 0o600) == 0)
        let shards = dir.path("shards")
        try FileManager.default.createDirectory(atPath: shards, withIntermediateDirectories: false)
        try FileManager.default.copyItem(atPath: model, toPath: shards + "/a.safetensors")
        #expect(mkfifo(shards + "/b.safetensors", 0o600) == 0)
        for input in [fifo, shards] {
            let commands = [["inspect", input], ["validate", input], ["diff", input, model], ["diff", model, input],
                            ["convert", input, dir.path("out.safetensors")]]
            for command in commands {
                let (result, timedOut) = try runBounded(command)
                #expect(!timedOut, "qpk \(command.joined(separator: " ")) blocked")
                #expect(result.status == 2, "qpk \(command.joined(separator: " ")): \(result.stderr)")
                #expect(result.stderr.split(separator: "\n").count == 1)
                #expect(result.stderr.contains("not a regular file"))
            }
        }
    }

    // MARK: Ambiguous QPK header

    /// Appends a second `"tensors": []` to the demo model's QPK header and fixes both CRCs, so
    /// the file is valid but for the duplicate key.
    func writeDuplicateKeyQPK(from source: String, to path: String) throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: source)))
        func u64(_ at: Int) -> Int { (0..<8).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) } }
        func put32(_ value: UInt32, at: Int) { for i in 0..<4 { bytes[at + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) } }
        let offset = u64(16), length = u64(24)
        var header = Array(bytes[offset..<(offset + length)])
        #expect(header.last == UInt8(ascii: "}"))
        header.removeLast()
        header += Array(#","tensors":[]}"#.utf8)
        bytes = Array(bytes[..<offset]) + header
        for i in 0..<8 { bytes[24 + i] = UInt8(truncatingIfNeeded: header.count >> (8 * i)) }
        put32(CRC32.checksum(header), at: 32)
        put32(CRC32.checksum(bytes[0..<60]), at: 60)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    @Test("a duplicate key in a QPK header is the rule duplicate_key (exit 1), not first-one-wins")
    func duplicateQPKKey() throws {
        let dir = try TemporaryDirectory()
        let qpk = dir.path("m.qpk")
        #expect(try QpkProcess.run(["convert", model, qpk, "--method", "rtn"]).status == 0)
        let duplicated = dir.path("dup.qpk")
        try writeDuplicateKeyQPK(from: qpk, to: duplicated)
        let validate = try QpkProcess.run(["validate", duplicated, "--json"])
        #expect(validate.status == 1)
        #expect(validate.stdout.contains("duplicate_key"))
        for command in [["inspect", duplicated], ["convert", duplicated, dir.path("x.safetensors")], ["diff", duplicated, qpk]] {
            let result = try QpkProcess.run(command)
            #expect(result.status == 1, "\(command): \(result.stderr)")
            #expect(result.stderr.contains(": duplicate_key: ") && result.stderr.contains("\"tensors\""))
        }
    }

    // MARK: Debris

    /// A safetensors file of `tensors` 1024×1024 F32 tensors of varied values.
    func writeLargeModel(_ path: String, tensors count: Int) throws {
        let infos = (0..<count).map { TensorInfo(name: "layers.\($0).weight", dtype: .f32, shape: [1024, 1024]) }
        let writer = try SafetensorsWriter(url: URL(fileURLWithPath: path), tensors: infos, metadata: [:], overwrite: false)
        var values = [Float](repeating: 0, count: 1024 * 1024)
        for i in values.indices {
            let step: Int = (i &* 7919) % 1999
            values[i] = Float(step) / 1000 - 1
        }
        let raw: [UInt8] = values.withUnsafeBytes { Array($0) }
        let bytes = TensorBytes(copying: raw)
        for info in infos { try writer.write(info, storage: .dense(bytes)) }
        try writer.finish()
    }

    /// Starts `qpk convert input output` in the background.
    func startConvert(_ input: String, _ output: String, _ extra: [String] = []) throws -> Process {
        let process = Process()
        process.executableURL = QpkProcess.binary
        process.arguments = ["convert", input, output] + extra
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Waits until `dir` holds a qpk temporary file; `false` after `seconds`.
    func waitForTemporaryFile(in dir: TemporaryDirectory, seconds: Double = 30) throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try contents(dir).contains(where: { $0.contains(TemporaryFiles.marker) }) { return true }
            usleep(2000)
        }
        return false
    }

    @Test("kill -9 during convert leaves the folder as it was plus at most a temp file, which the next run clears")
    func killNine() throws {
        let inputs = try TemporaryDirectory()
        let big = inputs.path("big.safetensors")
        try writeLargeModel(big, tensors: 32)
        let dir = try TemporaryDirectory()
        try Data("keep".utf8).write(to: dir.url.appendingPathComponent("notes.txt"))

        // QPK output goes to an unnamed O_TMPFILE: nothing ever appears before the end.
        let quantizing = try startConvert(big, dir.path("out.qpk"))
        usleep(500_000)
        #expect(quantizing.isRunning, "the conversion ended before it could be killed")
        kill(quantizing.processIdentifier, SIGKILL)
        quantizing.waitUntilExit()
        #expect(quantizing.terminationReason == .uncaughtSignal)
        #expect(try contents(dir) == ["notes.txt"])

        // HDF5 output needs a named temp file (libhdf5 opens by path): kill -9 leaves it ...
        let hdf5 = try startConvert(big, dir.path("out.h5"), ["--dtype", "bf16"])
        #expect(try waitForTemporaryFile(in: dir))
        kill(hdf5.processIdentifier, SIGKILL)
        hdf5.waitUntilExit()
        #expect(hdf5.terminationReason == .uncaughtSignal)
        let left = try contents(dir).filter { $0 != "notes.txt" }
        #expect(left.count <= 1 && left.allSatisfy { $0.hasPrefix(".out.h5.qpk-tmp-\(hdf5.processIdentifier)-") })
        #expect(!FileManager.default.fileExists(atPath: dir.path("out.h5")))

        // A new shard folder is built under a temporary name: killed, it is one hidden folder.
        let sharding = try startConvert(big, dir.path("shards") + "/", ["--max-shard-size", "20MB", "--dtype", "bf16"])
        #expect(try waitForTemporaryFile(in: dir))
        kill(sharding.processIdentifier, SIGKILL)
        sharding.waitUntilExit()
        #expect(!FileManager.default.fileExists(atPath: dir.path("shards")))

        // ... and the next run into the folder removes them (their processes are gone).
        #expect(try QpkProcess.run(["convert", model, dir.path("small.safetensors")]).status == 0)
        #expect(try contents(dir) == ["notes.txt", "small.safetensors"])
    }

    @Test("SIGINT and SIGTERM during convert remove the temp file and exit 128 + signal")
    func interrupted() throws {
        let inputs = try TemporaryDirectory()
        let big = inputs.path("big.safetensors")
        try writeLargeModel(big, tensors: 32)
        let dir = try TemporaryDirectory()
        for signalNumber in [SIGTERM, SIGINT] {
            let process = try startConvert(big, dir.path("out.h5"), ["--dtype", "bf16"])
            #expect(try waitForTemporaryFile(in: dir))
            kill(process.processIdentifier, signalNumber)
            process.waitUntilExit()
            #expect(process.terminationStatus == 128 + signalNumber)
            #expect(try contents(dir) == [])
        }
    }

    // MARK: Loss: --force on a model folder

    @Test("--force on a shard folder replaces only qpk's shards and index; other files stay")
    func shardFolderKeepsForeignFiles() throws {
        let dir = try TemporaryDirectory()
        let folder = dir.path("model")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        for name in ["config.json", "tokenizer.json"] {
            try Data("{}".utf8).write(to: URL(fileURLWithPath: folder + "/" + name))
        }
        // Writing into an existing folder with other files is fine.
        let first = try QpkProcess.run(["convert", model, folder, "--max-shard-size", "100KB"])
        #expect(first.status == 0, "\(first.stderr)")
        let shards4 = (1...4).map { "model-0000\($0)-of-00004.safetensors" }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
            == ["config.json"] + shards4 + ["model.safetensors.index.json", "tokenizer.json"])
        // Without --force an existing shard or index is refused, and nothing changes.
        let again = try QpkProcess.run(["convert", model, folder, "--max-shard-size", "200KB"])
        #expect(again.status == 2)
        #expect(again.stderr.contains("already exists"))
        // A shard-like file that the index does not list is not qpk's to delete.
        try Data("mine".utf8).write(to: URL(fileURLWithPath: folder + "/model-00009-of-00009.safetensors"))
        let forced = try QpkProcess.run(["convert", model, folder, "--max-shard-size", "200KB", "--force"])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).sorted() == [
            "config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
            "model-00009-of-00009.safetensors", "model.safetensors.index.json", "tokenizer.json",
        ])
        #expect(try QpkProcess.run(["diff", model, folder]).status == 0)
    }

    // MARK: Surprises: the path decides the format

    @Test("--max-shard-size never overrides the output path's extension")
    func shardSizeWithFileOutput() throws {
        let dir = try TemporaryDirectory()
        let qpk = dir.path("z.qpk")
        #expect(try QpkProcess.run(["convert", model, qpk, "--method", "rtn"]).status == 0)
        let before = try sha256(qpk)
        for output in [qpk, dir.path("z.safetensors"), dir.path("z.h5")] {
            let result = try QpkProcess.run(["convert", model, output, "--max-shard-size", "10KB", "--force"])
            #expect(result.status == 2, "\(output): \(result.stderr)")
            #expect(result.stderr.contains("--max-shard-size"))
        }
        #expect(try sha256(qpk) == before)
        #expect(try contents(dir) == ["z.qpk"])
        // A folder path (trailing slash, or no extension) is what shards go to.
        #expect(try QpkProcess.run(["convert", model, dir.path("shards") + "/", "--max-shard-size", "100KB"]).status == 0)
        #expect(try QpkProcess.run(["convert", model, dir.path("more"), "--max-shard-size", "100KB"]).status == 0)
        #expect(try QpkProcess.run(["validate", dir.path("shards"), dir.path("more")]).status == 0)
    }

    // MARK: Silent no-ops

    @Test("a no-op or lossy request is a one-line usage error with exit 2, and nothing is written")
    func usageErrors() throws {
        let dir = try TemporaryDirectory()
        let qpk = dir.path("m.qpk")
        #expect(try QpkProcess.run(["convert", model, qpk, "--method", "rtn"]).status == 0)
        let out = dir.path("out.safetensors")
        let cases: [(arguments: [String], mentions: String)] = [
            (["inspect", model, "--tensor", "nomatch"], "--tensor 'nomatch'"),
            (["diff", model, model, "--tensor", "nomatch"], "--tensor 'nomatch'"),
            (["convert", model, dir.path("a.qpk"), "--include", "encoder.*"], "--include 'encoder.*'"),
            (["convert", model, dir.path("a.qpk"), "--exclude", "nomatch"], "--exclude 'nomatch'"),
            (["convert", model, out, "--include", "core.*"], "--include"),
            (["convert", qpk, dir.path("b.qpk"), "--bits", "3"], "--bits has no effect"),
            (["convert", model, out, "--bits", "3"], "--bits"),
            (["convert", model, out, "--group-size", "32"], "--group-size"),
            (["convert", model, out, "--outlier-mask"], "--outlier-mask"),
            (["convert", qpk, dir.path("b.qpk"), "--outlier-mask"], "--outlier-mask"),
            (["convert", model, out, "--compression", "gzip"], "--compression"),
            (["convert", model, dir.path("a.qpk"), "--compression", "gzip"], "--compression"),
            (["convert", model, out, "--dtype", "int8"], "--allow-lossy-cast"),
            (["convert", qpk, out, "--dtype", "u8"], "--allow-lossy-cast"),
            (["convert", model, out, "--threads", "0"], "--threads"),
            (["inspect", model, "--stats", "--threads", "0"], "--threads"),
            (["diff", model, model, "--threads", "0"], "--threads"),
            (["validate", model, "--threads=-1"], "--threads"),
            (["diff", model, model, "--atol=-1"], "--atol"),
            (["diff", model, model, "--rtol", "nan"], "--rtol"),
            (["inspect", model, "--histogram", "--bins", "0"], "--bins"),
            (["inspect", model, "--bins", "10"], "--histogram"),
            (["convert", model, out, "--allow-lossy-cast"], "--allow-lossy-cast has no effect"),
            // Recipe flags that cannot work together (spec/quantization.md §14).
            (["convert", model, dir.path("a.qpk"), "--codebook", "none", "--scale-octaves", "8"], "--scale-octaves"),
            (["convert", model, dir.path("a.qpk"), "--scale-bits", "f16", "--scale-octaves", "3"], "--scale-octaves"),
            (["convert", model, dir.path("a.qpk"), "--scale-bits", "9"], "--scale-bits 2…8"),
            (["convert", model, dir.path("a.qpk"), "--codebook", "lloyd", "--scheme", "affine"], "--scheme symmetric"),
            (["convert", model, dir.path("a.qpk"), "--codebook", "lloyd", "--bits", "8"], "--bits 4"),
            (["convert", model, dir.path("mlx"), "--layout", "mlx", "--codebook", "nf4", "--scheme", "symmetric"],
             "cannot hold a codebook"),
        ]
        for (arguments, mentions) in cases {
            let result = try QpkProcess.run(arguments)
            let line = "qpk " + arguments.joined(separator: " ")
            #expect(result.status == 2, "\(line): \(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(line): \(result.stderr)")
            #expect(result.stderr.contains(mentions), "\(line): \(result.stderr)")
            #expect(!result.stdout.contains("EQUAL"), "\(line)")
        }
        #expect(try contents(dir) == ["m.qpk"])
        // With the opt-in, the cast happens (numpy's astype).
        let lossy = try QpkProcess.run(["convert", model, out, "--dtype", "int8", "--allow-lossy-cast"])
        #expect(lossy.status == 0, "\(lossy.stderr)")
    }

    // MARK: Reproducible output

    @Test("the same conversion writes the same bytes with 1 or 2 threads, run after run (qpk, safetensors, h5)")
    func reproducibleOutput() throws {
        let dir = try TemporaryDirectory()
        let qpk = dir.path("m.qpk")
        #expect(try QpkProcess.run(["convert", model, qpk]).status == 0)
        let sources = ["qpk": model, "safetensors": qpk, "h5": model]
        for (format, source) in sources.sorted(by: { $0.key < $1.key }) {
            var hashes: [String] = []
            // The same command each time (QPK provenance records it), but for --threads.
            let output = dir.path("out.\(format)")
            for threads in ["1", "2", "2"] {
                let result = try QpkProcess.run(["convert", source, output, "--force", "--threads", threads])
                #expect(result.status == 0, "\(result.stderr)")
                hashes.append(try sha256(output))
            }
            #expect(Set(hashes).count == 1, "\(format): \(hashes)")
        }
    }

    @Test("--threads N on every command: the same report with 1 or 2 threads")
    func threadsOnEveryCommand() throws {
        let dir = try TemporaryDirectory()
        let qpk = dir.path("m.qpk")
        #expect(try QpkProcess.run(["convert", model, qpk, "--method", "rtn", "--threads", "2"]).status == 0)
        for command in [["inspect", model, "--stats", "--json"], ["diff", model, qpk, "--json"], ["validate", model, qpk, "--json"]] {
            let one = try QpkProcess.run(command + ["--threads", "1"])
            let two = try QpkProcess.run(command + ["--threads", "2"])
            let all = try QpkProcess.run(command)
            #expect([0, 1].contains(one.status), "\(command): \(one.stderr)")
            #expect(one.status == two.status && two.status == all.status, "\(command)")
            #expect(!one.stdout.isEmpty && one.stdout == two.stdout && two.stdout == all.stdout, "\(command)")
        }
    }

    // MARK: Exit statuses

    @Test("one exit-status rule: missing input 2, invalid input 1, in every command")
    func exitStatuses() throws {
        let dir = try TemporaryDirectory()
        let missing = dir.path("missing.safetensors")
        for command in [["inspect", missing], ["validate", missing], ["diff", missing, model], ["convert", missing, dir.path("o.qpk")]] {
            let result = try QpkProcess.run(command)
            #expect(result.status == 2, "\(command)")
            #expect(result.stderr.split(separator: "\n").count == 1)
        }
        let truncated = dir.path("truncated.safetensors")
        try Data(try Data(contentsOf: URL(fileURLWithPath: model)).prefix(5000)).write(to: URL(fileURLWithPath: truncated))
        for command in [["inspect", truncated], ["validate", truncated], ["diff", truncated, model], ["convert", truncated, dir.path("o.qpk")]] {
            let result = try QpkProcess.run(command)
            #expect(result.status == 1, "\(command): \(result.stderr)")
        }
        #expect(try contents(dir) == ["truncated.safetensors"])
    }

    @Test("a shard index with an empty weight_map is invalid (empty_weight_map)")
    func emptyWeightMap() throws {
        let dir = try TemporaryDirectory()
        let index = dir.path("model.safetensors.index.json")
        try Data(#"{"metadata": {"total_size": 0}, "weight_map": {}}"#.utf8).write(to: URL(fileURLWithPath: index))
        let validate = try QpkProcess.run(["validate", index])
        #expect(validate.status == 1)
        #expect(validate.stdout.contains("empty_weight_map"))
        #expect(try QpkProcess.run(["inspect", dir.url.path]).status == 1)
    }

    @Test("an output in a missing folder is one line naming the folder, for every format")
    func missingOutputFolder() throws {
        let dir = try TemporaryDirectory()
        for name in ["x.h5", "x.qpk", "x.safetensors"] {
            let output = dir.path("absent/" + name)
            let result = try QpkProcess.run(["convert", model, output])
            #expect(result.status == 2)
            #expect(result.stderr == "qpk: error: \(output): cannot_write: the folder \(dir.path("absent")) does not exist; create it first\n")
        }
        #expect(try contents(dir) == [])
    }
}
