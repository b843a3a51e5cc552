import Foundation
import QPKCore

extension HDF5Reader {
    /// The 8-byte HDF5 format signature, `\x89HDF\r\n\x1a\n`.
    public static let signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]

    /// Whether `url` holds the HDF5 signature at offset 0 or, after a user block, at 512, 1024,
    /// 2048, … (the superblock may only start at those offsets, per the HDF5 file format spec §2.1).
    public static func hasHDF5Signature(_ url: URL) -> Bool {
        guard let handle = try? FileHandle(forReadingFrom: url) else { return false }
        defer { try? handle.close() }
        guard let size = try? handle.seekToEnd() else { return false }
        var offset: UInt64 = 0
        while offset + 8 <= size {
            guard (try? handle.seek(toOffset: offset)) != nil,
                  let bytes = try? handle.read(upToCount: 8)
            else { return false }
            if Array(bytes) == signature { return true }
            offset = offset == 0 ? 512 : offset * 2
        }
        return false
    }

    /// Checks an HDF5 file without stopping at the first problem: the signature, that libhdf5 opens
    /// it and walks its tree, that every tensor dataset reads to the end (in bounded slabs), and that
    /// no dataset has an element type without a qpk dtype. An empty result means the file is valid.
    /// Never throws or prints libhdf5's error stack, whatever the input; with ``HDF5Isolation``
    /// configured the check runs in the worker process, and a file that crashes or hangs libhdf5
    /// is reported as a ``HDF5Problem/Rule/libraryFailure`` problem.
    public static func validate(url: URL) -> [HDF5Problem] {
        if let problem = signatureProblem(url) { return [problem] }
        do {
            if let problems = try HDF5Isolation.check(url, level: .data) { return problems }
        } catch let error as HDF5Error {
            return [HDF5Problem(
                file: url.path, dataset: nil, rule: .libraryFailure, message: error.reason,
                hint: "the file is corrupt; re-download or re-export it")]
        } catch {
            return [HDF5Problem(file: url.path, dataset: nil, rule: .libraryFailure, message: "\(error)", hint: "")]
        }
        return validateInProcess(url: url)
    }

    private static func signatureProblem(_ url: URL) -> HDF5Problem? {
        guard !hasHDF5Signature(url) else { return nil }
        return HDF5Problem(
            file: url.path, dataset: nil, rule: .signature,
            message: "no HDF5 signature (\\x89HDF\\r\\n\\x1a\\n) at offset 0, 512, 1024, …",
            hint: "not an HDF5 file, or a truncated download or git-lfs pointer")
    }

    /// ``validate(url:)`` with libhdf5 in this process, whatever ``HDF5Isolation`` says. Reads
    /// each dataset exactly as ``storage(of:)`` does, slab for slab, so a worker that survived this
    /// has also gone through every libhdf5 call a later read makes.
    static func validateInProcess(url: URL) -> [HDF5Problem] {
        let path = url.path
        if let problem = signatureProblem(url) { return [problem] }
        let reader: HDF5Reader
        do {
            reader = try HDF5Reader(inProcess: url)
        } catch {
            return [HDF5Problem(
                file: path, dataset: nil, rule: .open, message: "cannot be opened: \(error)",
                hint: "the file is truncated or corrupt; re-download or re-export it")]
        }
        var problems = reader.unsupportedDatasets.map { entry in
            HDF5Problem(
                file: path, dataset: String(entry.path.dropFirst()), rule: .unsupportedDType,
                message: entry.reason, hint: "qpk skips this dataset when converting")
        }
        // One reused scratch slab, grown only when a single row exceeds it.
        var scratch = ByteBuffer(count: 1 << 20)
        for tensor in reader.tensors {
            guard let plan = reader.plan(named: tensor.name) else { continue }
            do {
                guard UInt64(plan.byteCount) <= ProcessInfo.processInfo.physicalMemory else {
                    throw HDF5Error.datasetTooLarge(file: path, dataset: tensor.name, bytes: "\(plan.byteCount)")
                }
                try reader.read(plan, slabBytes: slabBytes) { _, count in
                    if count > scratch.mutableBytes.count { scratch = ByteBuffer(count: count) }
                    return scratch.mutableBytes.baseAddress!
                }
            } catch {
                problems.append(HDF5Problem(
                    file: path, dataset: tensor.name, rule: .unreadable, message: "\(error)",
                    hint: "the file is truncated or corrupt; re-download or re-export it"))
            }
        }
        return problems
    }
}
