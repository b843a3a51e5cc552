import CHDF5
import Foundation
import QPKCore

/// Reads an HDF5 file (Keras 2 `model.save`/`save_weights`, Keras 3 `.weights.h5`, or any tree of
/// datasets) as a checkpoint, through libhdf5.
///
/// - Tensors are the numeric datasets of the whole tree; a tensor's name is its path without the
///   leading `/`. Their order follows the Keras attributes when the file is a Keras file
///   (``KerasLayout``), then the remaining datasets in name order.
/// - Element types map as ``HDF5Types`` documents; data is returned little-endian, row-major.
/// - Datasets that are not numeric tensors (strings, compounds, references, …), soft and external
///   links, and attributes that cannot be carried over are listed in ``skipped``, never fatal.
/// - ``metadata`` holds every attribute and empty group, in the reversible form of ``HDF5Metadata``.
///
/// The reader keeps the file open until it is released. It is safe to use from several threads:
/// every libhdf5 call goes through one process-wide lock, taken per bounded slab of data.
///
/// When ``HDF5Isolation`` is configured (the qpk executable always does), a worker process goes
/// through the file first, so a file that crashes or hangs libhdf5 becomes a thrown
/// ``HDF5Error`` instead of the death of this process.
public final class HDF5Reader: CheckpointReader {
    public let url: URL
    public var format: CheckpointFormat { .hdf5 }
    public let tensors: [TensorInfo]
    public let metadata: [String: String]
    /// Objects that are not tensors, with the reason: `(path, reason)`, where `path` starts at `/`
    /// and an attribute is written `object@name`.
    public let skipped: [(path: String, reason: String)]
    /// The Keras layout the file follows, if any.
    public let kerasLayout: KerasLayout?
    /// Every attribute of every group and dataset that could be read (object path → name → value).
    public let attributes: [String: [String: HDF5Attribute]]

    let unsupportedDatasets: [(path: String, reason: String)]
    private let plans: [String: HDF5DatasetPlan]
    private let file: hid_t
    /// Serialises the first ``storage(of:)`` calls while the data level is checked.
    private let dataCheck = NSLock()

    /// The largest slab one libhdf5 read call handles (the lock is released between slabs).
    static let slabBytes = 64 << 20

    /// Opens `url` and walks its whole tree (after an isolated worker did, when configured).
    /// - Throws: ``HDF5Error`` when the file is not HDF5, cannot be opened, or its tree is corrupt,
    ///   or when it crashed or hung the isolated libhdf5.
    public convenience init(url: URL) throws {
        try Self.checkAccess(url)
        _ = try HDF5Isolation.check(url, level: .structure)
        try self.init(inProcess: url)
    }

    private static func checkAccess(_ url: URL) throws {
        guard FileManager.default.isReadableFile(atPath: url.path) else {
            throw FileAccessError.cannotOpen(url.path, "no such readable file")
        }
        guard hasHDF5Signature(url) else { throw HDF5Error.notHDF5(file: url.path) }
    }

    /// Opens `url` with libhdf5 in this process, whatever ``HDF5Isolation`` says.
    init(inProcess url: URL) throws {
        self.url = url
        let path = url.path
        try Self.checkAccess(url)
        let call = HDF5Call(file: path, hint: HDF5Call.readHint)
        let (file, tree) = try HDF5Library.locked { () throws -> (hid_t, HDF5Tree) in
            let file = H5Fopen(path, qpk_H5F_ACC_RDONLY(), HDF5Library.defaultProperties)
            guard file >= 0 else { throw HDF5Error.cannotOpen(file: path, detail: HDF5Library.takeErrorDetail()) }
            do {
                return (file, try HDF5Tree.walk(file: file, call: call))
            } catch {
                H5Fclose(file)
                H5Eclear2(qpk_H5E_DEFAULT())
                throw error
            }
        }
        self.file = file
        var plans: [String: HDF5DatasetPlan] = [:]
        for plan in tree.plans { plans[plan.info.name] = plan }
        self.plans = plans
        let order = KerasLayout.order(
            names: tree.plans.map(\.info.name), attributes: tree.attributes, groups: Set(tree.groups))
        kerasLayout = order.layout
        tensors = order.names.compactMap { plans[$0]?.info }
        skipped = tree.skipped
        unsupportedDatasets = tree.unsupportedDatasets
        attributes = tree.attributes
        do {
            var carried = tree.attributes
            for (object, names) in tree.consumed {
                for name in names { carried[object]?[name] = nil }
                if carried[object]?.isEmpty == true { carried[object] = nil }
            }
            metadata = try HDF5Metadata.encode(
                attributes: carried, groups: tree.groups, tensorNames: tree.plans.map(\.info.name))
        } catch {
            HDF5Library.locked { _ = H5Fclose(file) }
            throw HDF5Error.invalidMetadata(file: path, key: HDF5Metadata.attributesKey, reason: "cannot encode attributes")
        }
    }

    deinit {
        HDF5Library.locked {
            _ = H5Fclose(file)
            H5Eclear2(qpk_H5E_DEFAULT())
        }
    }

    public func storage(of tensor: TensorInfo) throws -> TensorStorage {
        guard let plan = plans[tensor.name] else { throw CheckpointError.noSuchTensor(url.path, tensor.name) }
        guard UInt64(plan.byteCount) <= ProcessInfo.processInfo.physicalMemory else {
            throw HDF5Error.datasetTooLarge(file: url.path, dataset: plan.info.name, bytes: "\(plan.byteCount)")
        }
        if plan.byteCount > 0 {
            dataCheck.lock()
            defer { dataCheck.unlock() }
            _ = try HDF5Isolation.check(url, level: .data)
        }
        let buffer = ByteBuffer(count: plan.byteCount)
        try read(plan, slabBytes: Self.slabBytes) { offset, _ in buffer.mutableBytes.baseAddress! + offset }
        return .dense(TensorBytes(buffer))
    }

    /// Reads the dataset of `plan` in slabs of whole rows (along the first axis) of at most
    /// `slabBytes` (one row when a row is larger), each into the memory `destination` returns for
    /// the slab's byte offset and size. The lock is held per slab only.
    func read(
        _ plan: HDF5DatasetPlan, slabBytes: Int,
        destination: (_ offset: Int, _ count: Int) -> UnsafeMutableRawPointer
    ) throws {
        guard plan.byteCount > 0 else { return }
        let call = HDF5Call(file: url.path, hint: HDF5Call.readHint)
        let object = plan.path
        let (dataset, memoryType, fileSpace) = try HDF5Library.locked {
            let dataset = try call.handle(H5Dopen2(file, object, HDF5Library.defaultProperties), "opening the dataset", object)
            let memoryType = try call.handle(plan.memoryType.make(for: dataset.id), "building the memory type", object)
            let fileSpace = try call.handle(H5Dget_space(dataset.id), "reading the dataspace", object)
            return (dataset, memoryType, fileSpace)
        }
        let rows = plan.storedShape.first ?? 1
        let rowBytes = plan.byteCount / max(rows, 1)
        if plan.storedShape.isEmpty || plan.byteCount <= slabBytes || rows <= 1 {
            let target = destination(0, plan.byteCount)
            try HDF5Library.locked {
                try call.ok(H5Dread(dataset.id, memoryType.id, qpk_H5S_ALL(), qpk_H5S_ALL(), HDF5Library.defaultProperties, target),
                            "reading the data", object)
                HDF5Progress.tick()
            }
            return
        }
        let rowsPerSlab = max(1, slabBytes / max(rowBytes, 1))
        var row = 0
        while row < rows {
            let count = min(rowsPerSlab, rows - row)
            let target = destination(row * rowBytes, count * rowBytes)
            try HDF5Library.locked {
                var start = [hsize_t](repeating: 0, count: plan.storedShape.count)
                start[0] = hsize_t(row)
                var extent = plan.storedShape.map { hsize_t($0) }
                extent[0] = hsize_t(count)
                try call.ok(H5Sselect_hyperslab(fileSpace.id, H5S_SELECT_SET, start, nil, extent, nil),
                            "selecting rows \(row)..<\(row + count)", object)
                let memorySpace = try call.handle(
                    H5Screate_simple(Int32(extent.count), extent, nil), "creating a dataspace", object)
                try call.ok(H5Dread(dataset.id, memoryType.id, memorySpace.id, fileSpace.id, HDF5Library.defaultProperties, target),
                            "reading rows \(row)..<\(row + count)", object)
                HDF5Progress.tick()
            }
            row += count
        }
    }

    func plan(named name: String) -> HDF5DatasetPlan? { plans[name] }
}

extension HDF5Reader: @unchecked Sendable {}
