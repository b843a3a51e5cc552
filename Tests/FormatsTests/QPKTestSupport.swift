import Foundation
import Testing
@testable import Formats
import QPKCore

/// A temporary directory, removed when the value goes away.
final class QPKTempDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("qpk-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> URL { url.appendingPathComponent(name) }

    deinit { try? FileManager.default.removeItem(at: url) }
}

/// A tiny reference quantizer and dequantizer written from the spec (§5–§6), so the format tests
/// do not depend on the Quantize module.
enum QPKReference {
    /// Packs codes as the LSB-first bit stream of §5.2, one bit at a time.
    static func pack(_ codes: [UInt8], bits: Int) -> [UInt8] {
        var packed = [UInt8](repeating: 0, count: (codes.count * bits + 7) / 8)
        for (i, code) in codes.enumerated() {
            for b in 0..<bits where code >> b & 1 == 1 {
                let k = i * bits + b
                packed[k / 8] |= 1 << (k % 8)
            }
        }
        return packed
    }

    static func unpack(_ packed: [UInt8], bits: Int, count: Int) -> [UInt8] {
        (0..<count).map { i in
            var code: UInt8 = 0
            for b in 0..<bits {
                let k = i * bits + b
                if packed[k / 8] >> (k % 8) & 1 == 1 { code |= 1 << b }
            }
            return code
        }
    }

    /// Min/max quantization of `values` (row-major, `info.shape`), with optional outliers chosen
    /// by magnitude, and the error stats measured against `values`.
    static func quantize(
        _ values: [Float], info: TensorInfo, bits: Int, groupSize: Int, scheme: QuantizationScheme = .affine,
        outliers kind: OutlierSet.Kind? = nil, outlierCount: Int = 2
    ) -> QuantizedTensor {
        let (rows, columns) = info.matrixShape
        let layout = QuantizationLayout(scheme: scheme, bits: bits, groupSize: groupSize)
        let groups = layout.groupsPerRow(columns: columns)
        let top = Float((1 << bits) - 1)
        var codes = [UInt8](repeating: 0, count: rows * columns)
        var scales: [Float16] = [], zeros: [Float16] = []
        for r in 0..<rows {
            for g in 0..<groups {
                let range = (g * groupSize)..<min((g + 1) * groupSize, columns)
                let slice = range.map { values[r * columns + $0] }
                var scale: Float, zero: Float
                if scheme == .symmetric {
                    zero = Float(1 << (bits - 1))
                    let absmax = slice.map(abs).max() ?? 0
                    scale = absmax > 0 ? absmax / (zero - 1 > 0 ? zero - 1 : 1) : 1
                } else {
                    let lo = min(slice.min() ?? 0, 0), hi = max(slice.max() ?? 0, 0)
                    scale = hi > lo ? (hi - lo) / top : 1
                    zero = (-lo / scale).rounded()
                }
                let s16 = Float16(scale), z16 = Float16(zero)
                scales.append(s16)
                zeros.append(z16)
                for c in range {
                    let q = (values[r * columns + c] / Float(s16) + Float(z16)).rounded()
                    codes[r * columns + c] = UInt8(min(max(q, 0), top))
                }
            }
        }
        var set: OutlierSet?
        if let kind {
            set = selectOutliers(values, rows: rows, columns: columns, kind: kind, count: outlierCount)
        }
        var tensor = QuantizedTensor(
            info: info, layout: layout, codes: pack(codes, bits: bits), scales: scales, zeros: zeros, outliers: set,
            method: "minmax")
        let restored = dequantize(tensor)
        var signal = 0.0, noise = 0.0, maxError = 0.0
        for (x, y) in zip(values, restored) {
            signal += Double(x) * Double(x)
            noise += Double(x - y) * Double(x - y)
            maxError = max(maxError, Double(abs(x - y)))
        }
        tensor.error = QuantizationErrorStats(sqnrDB: noise == 0 ? .infinity : 10 * log10(signal / noise), maxAbsError: maxError)
        return tensor
    }

    /// The `count` rows, columns or elements of largest magnitude, with their values in the
    /// order §6 prescribes.
    static func selectOutliers(_ values: [Float], rows: Int, columns: Int, kind: OutlierSet.Kind, count: Int) -> OutlierSet {
        var indices: [Int64]
        var picked: [Float] = []
        switch kind {
        case .rows:
            let score = (0..<rows).map { r in (0..<columns).map { abs(values[r * columns + $0]) }.max() ?? 0 }
            indices = (0..<rows).sorted { score[$0] > score[$1] }.prefix(min(count, rows)).map(Int64.init).sorted()
            for r in indices { picked += (0..<columns).map { values[Int(r) * columns + $0] } }
        case .columns:
            let score = (0..<columns).map { c in (0..<rows).map { abs(values[$0 * columns + c]) }.max() ?? 0 }
            indices = (0..<columns).sorted { score[$0] > score[$1] }.prefix(min(count, columns)).map(Int64.init).sorted()
            for r in 0..<rows { picked += indices.map { values[r * columns + Int($0)] } }
        case .elements:
            indices = values.indices.sorted { abs(values[$0]) > abs(values[$1]) }.prefix(min(count, values.count)).map(Int64.init).sorted()
            picked = indices.map { values[Int($0)] }
        }
        return OutlierSet(kind: kind, indices: indices, values: picked, statistic: "abs_max", threshold: 1.25)
    }

    /// x̂ = (q − z)·s per group, then the outliers (§5.4); `s` the fp16 scale or the one decoded
    /// from its log code (§5.8, ``QuantizedTensor/decodedScales(rows:groupsPerRow:)``).
    static func dequantize(_ tensor: QuantizedTensor) -> [Float] {
        let (rows, columns) = tensor.info.matrixShape
        let layout = tensor.layout
        let groups = layout.groupsPerRow(columns: columns)
        let codes = unpack(tensor.codes, bits: layout.bits, count: rows * columns)
        let scales = tensor.decodedScales(rows: rows, groupsPerRow: groups)!
        var out = [Float](repeating: 0, count: rows * columns)
        for r in 0..<rows {
            for c in 0..<columns {
                let g = r * groups + c / layout.groupSize
                out[r * columns + c] = (Float(codes[r * columns + c]) - Float(tensor.zeros[g])) * scales[g]
            }
        }
        if let o = tensor.outliers {
            var v = 0
            switch o.kind {
            case .rows:
                for r in o.indices { for c in 0..<columns { out[Int(r) * columns + c] = o.values[v]; v += 1 } }
            case .columns:
                for r in 0..<rows { for c in o.indices { out[r * columns + Int(c)] = o.values[v]; v += 1 } }
            case .elements:
                for i in o.indices { out[Int(i)] = o.values[v]; v += 1 }
            }
        }
        return out
    }

    static func randomValues(_ count: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in Float.random(in: -1...1, using: &rng) * (Float.random(in: 0...1, using: &rng) < 0.01 ? 8 : 1) }
    }
}

/// Writing sample files and editing their bytes to break one rule at a time.
enum QPKFixture {
    static let provenance = QPKProvenance(
        sources: [.init(name: "model.safetensors", size: 1234, headerSHA256: String(repeating: "ab", count: 32))],
        qpkVersion: "0.1.0-test", createdBy: "qpk tests")

    static func floatBytes(_ values: [Float]) -> TensorBytes {
        TensorBytes(copying: values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } })
    }

    /// Writes `items` in the given order (the header lists them in `order`, default the same).
    static func write(
        _ url: URL, _ items: [(TensorInfo, TensorStorage)], order: [TensorInfo]? = nil,
        metadata: [String: String] = ["format": "pt"], recipe: [String: QPKJSONValue] = ["bits": 4]
    ) throws {
        let writer = try QPKWriter(
            url: url, tensors: order ?? items.map(\.0), metadata: metadata, recipe: recipe, provenance: provenance,
            overwrite: true)
        for (info, storage) in items { try writer.write(info, storage: storage) }
        try writer.finish()
    }

    /// A small valid file: a raw F32 bias `b` [3], a raw F32 `c` [3], and an affine 4-bit `w`
    /// [4, 10] (group 4) with element outliers, and a symmetric 3-bit `s` [2, 8].
    @discardableResult
    static func writeSample(_ url: URL) throws -> [String: QuantizedTensor] {
        let bInfo = TensorInfo(name: "b", dtype: .f32, shape: [3])
        let cInfo = TensorInfo(name: "c", dtype: .f32, shape: [3])
        let wInfo = TensorInfo(name: "w", dtype: .f32, shape: [4, 10])
        let sInfo = TensorInfo(name: "s", dtype: .f32, shape: [2, 8])
        let w = QPKReference.quantize(QPKReference.randomValues(40, seed: 1), info: wInfo, bits: 4, groupSize: 4, outliers: .elements, outlierCount: 3)
        let s = QPKReference.quantize(QPKReference.randomValues(16, seed: 2), info: sInfo, bits: 3, groupSize: 8, scheme: .symmetric)
        try write(url, [
            (bInfo, .dense(floatBytes([1, 2, 3]))), (cInfo, .dense(floatBytes([4, 5, 6]))),
            (wInfo, .quantized(w)), (sInfo, .quantized(s)),
        ])
        return ["w": w, "s": s]
    }

    struct Preamble {
        var headerOffset: Int
        var headerLength: Int
    }

    static func preamble(_ bytes: [UInt8]) -> Preamble {
        func u64(_ at: Int) -> Int { (0..<8).reduce(0) { $0 | Int(bytes[at + $1]) << (8 * $1) } }
        return Preamble(headerOffset: u64(16), headerLength: u64(24))
    }

    static func putU32(_ value: UInt32, into bytes: inout [UInt8], at offset: Int) {
        for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) }
    }

    static func putU64(_ value: UInt64, into bytes: inout [UInt8], at offset: Int) {
        for i in 0..<8 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
    }

    /// Recomputes the preamble CRC after an edit of bytes 0–59.
    static func fixPreambleCRC(_ bytes: inout [UInt8]) {
        putU32(CRC32.checksum(bytes[0..<60]), into: &bytes, at: 60)
    }

    /// Edits the preamble (then re-seals its CRC unless `sealed` is false).
    static func editPreamble(_ url: URL, sealed: Bool = true, _ edit: (inout [UInt8]) -> Void) throws {
        var bytes = try [UInt8](Data(contentsOf: url))
        edit(&bytes)
        if sealed { fixPreambleCRC(&bytes) }
        try Data(bytes).write(to: url)
    }

    /// Replaces the header with `text`, keeping its offset, and re-seals both CRCs.
    static func replaceHeader(_ url: URL, with header: [UInt8]) throws {
        let bytes = try [UInt8](Data(contentsOf: url))
        let p = preamble(bytes)
        var out = Array(bytes[0..<p.headerOffset]) + header
        putU64(UInt64(header.count), into: &out, at: 24)
        putU32(CRC32.checksum(header), into: &out, at: 32)
        fixPreambleCRC(&out)
        try Data(out).write(to: url)
    }

    /// The header as a mutable JSON object.
    static func header(_ url: URL) throws -> [String: Any] {
        let bytes = try [UInt8](Data(contentsOf: url))
        let p = preamble(bytes)
        return try JSONSerialization.jsonObject(with: Data(bytes[p.headerOffset..<(p.headerOffset + p.headerLength)])) as! [String: Any]
    }

    /// Edits the parsed header and writes it back, re-sealing the CRCs.
    static func editHeader(_ url: URL, _ edit: (inout [String: Any]) -> Void) throws {
        var object = try header(url)
        edit(&object)
        try replaceHeader(url, with: [UInt8](try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])))
    }

    /// Edits the entry of tensor `name` inside the header.
    static func editTensor(_ url: URL, _ name: String, _ edit: @escaping (inout [String: Any]) -> Void) throws {
        try editHeader(url) { header in
            var tensors = header["tensors"] as! [[String: Any]]
            let index = tensors.firstIndex { $0["name"] as? String == name }!
            edit(&tensors[index])
            header["tensors"] = tensors
        }
    }

    /// The (offset, length) of a blob, read from the header.
    static func blob(_ url: URL, _ name: String, _ kind: String) throws -> (offset: Int, length: Int) {
        let tensors = try header(url)["tensors"] as! [[String: Any]]
        let blobs = tensors.first { $0["name"] as? String == name }!["blobs"] as! [String: [String: Any]]
        return ((blobs[kind]!["offset"] as! NSNumber).intValue, (blobs[kind]!["length"] as! NSNumber).intValue)
    }

    /// Rewrites a blob's bytes and its CRC in the header, so only content rules can catch it.
    static func rewriteBlob(_ url: URL, _ name: String, _ kind: String, _ edit: (inout [UInt8]) -> Void) throws {
        let (offset, length) = try blob(url, name, kind)
        var bytes = try [UInt8](Data(contentsOf: url))
        var content = Array(bytes[offset..<(offset + length)])
        edit(&content)
        bytes.replaceSubrange(offset..<(offset + length), with: content)
        try Data(bytes).write(to: url)
        let crc = CRC32.checksum(content)
        try editTensor(url, name) { tensor in
            var blobs = tensor["blobs"] as! [String: [String: Any]]
            blobs[kind]!["crc32"] = crc
            tensor["blobs"] = blobs
        }
    }

    static func flipByte(_ url: URL, at offset: Int) throws {
        var bytes = try [UInt8](Data(contentsOf: url))
        bytes[offset] ^= 0x5A
        try Data(bytes).write(to: url)
    }

    /// The error `QPKReader(url:)` throws, if it is a `QPKError`.
    static func openError(_ url: URL) -> QPKError? {
        do {
            _ = try QPKReader(url: url)
            return nil
        } catch {
            return error as? QPKError
        }
    }
}
