#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CHDF5
import Foundation
import QPKCore

/// Optional dataset compression for ``HDF5Writer``.
public enum HDF5Compression: Sendable, Equatable {
    /// Chunked storage with the shuffle filter then deflate at `level` (0…9, clamped), as
    /// `h5py.create_dataset(..., compression="gzip", shuffle=True)` writes.
    case gzip(level: Int)
}

/// Writes a checkpoint as an HDF5 file that h5py and Keras read back.
///
/// **Name mapping** (also spec/hdf5-mapping.md): the tensor `a/b/c` is the dataset `/a/b/c`; each
/// `/` in a name makes a group, and nothing else does — `.` is an ordinary character, so
/// `encoder.layer.0.attention.self.query.weight` is one dataset at the root. The reader strips the
/// leading `/`, so the mapping is its own inverse. Names that HDF5 would not keep as written are
/// refused with ``HDF5Error/invalidName(file:name:reason:)``: empty names or components (`a//b`,
/// a leading or trailing `/`) and the components `.` and `..`. A name that is also the group of
/// another (`a` and `a/b`) is ``HDF5Error/nameConflict(file:name:)``.
///
/// **Metadata** is restored as ``HDF5Metadata`` documents: `hdf5.attributes` recreates every group
/// and dataset attribute with its exact HDF5 type, `hdf5.groups` recreates empty groups, and every
/// other key becomes a variable-length UTF-8 string attribute of the root group. Attributes of
/// objects that are not written (a tensor left out by `--exclude`) are dropped.
///
/// **Dtypes** map as ``HDF5Types`` documents; the opaque encodings get their `dtype` (and `shape`)
/// attributes from the writer itself.
///
/// The file is built under a temporary name beside `url` and renamed into place by ``finish()``;
/// a writer dropped or failing before that removes the temporary file and leaves nothing behind.
public final class HDF5Writer: CheckpointWriter {
    public let url: URL
    private let temporaryURL: URL
    private var file: hid_t = -1
    private let call: HDF5Call
    private var pending: [String: TensorInfo]
    private var finished = false

    /// Largest chunk the writer makes when compressing (h5py's auto-chunking also aims at ≤ 1 MiB).
    static let chunkBytes = 1 << 20

    /// Creates the temporary file, its groups, every dataset and every attribute.
    /// - Parameters:
    ///   - tensors: every tensor that will be written, in order (datasets are created in this order).
    ///   - metadata: checkpoint metadata, in the form ``HDF5Reader`` produces (any other keys are
    ///     kept as root string attributes).
    ///   - overwrite: replace an existing file at `url`; otherwise that is an error.
    ///   - compression: chunk and compress every non-scalar, non-empty dataset.
    public init(
        url: URL, tensors: [TensorInfo], metadata: [String: String], overwrite: Bool,
        compression: HDF5Compression? = nil
    ) throws {
        self.url = url
        let path = url.path
        call = HDF5Call(file: path, hint: HDF5Call.writeHint)
        try OutputLocation.prepare(url, overwrite: overwrite)
        pending = [:]
        var groupPaths = Set<String>()
        for tensor in tensors {
            try Self.checkName(tensor.name, file: path)
            guard pending.updateValue(tensor, forKey: tensor.name) == nil else {
                throw HDF5Error.unexpectedTensor(file: path, name: tensor.name, reason: "announced twice")
            }
            var prefix = ""
            for part in tensor.name.split(separator: "/").dropLast() {
                prefix += "/" + part
                groupPaths.insert(prefix)
            }
        }
        if let clash = tensors.first(where: { groupPaths.contains("/" + $0.name) }) {
            throw HDF5Error.nameConflict(file: path, name: clash.name)
        }
        let (attributes, extraGroups) = try HDF5Metadata.decode(metadata, file: path)
        let datasetPaths = Set(tensors.map { "/" + $0.name })
        for group in extraGroups where group.hasPrefix("/") && !datasetPaths.contains(group) {
            guard (try? Self.checkName(String(group.dropFirst()), file: path)) != nil else { continue }
            var prefix = ""
            for part in group.split(separator: "/") {
                prefix += "/" + part
                if datasetPaths.contains(prefix) { throw HDF5Error.nameConflict(file: path, name: String(prefix.dropFirst())) }
                groupPaths.insert(prefix)
            }
        }
        // libhdf5 opens files by path, so the temporary file has a name: registered for removal
        // on SIGINT/SIGTERM, and cleared by the next run after a kill -9 (``TemporaryFiles``).
        temporaryURL = TemporaryFiles.temporaryURL(for: url)
        TemporaryFiles.register(temporaryURL)
        let temporaryPath = temporaryURL.path
        let call = self.call
        let level = compression.map { if case let .gzip(level) = $0 { min(max(level, 0), 9) } else { 4 } }
        file = try HDF5Library.locked {
            // No object modification times anywhere (root group included, through the file
            // creation list, which is a group creation list), so the same tensors give the same bytes.
            let fileProperties = try call.handle(H5Pcreate(qpk_H5P_FILE_CREATE()), "creating file properties", "/")
            try call.ok(H5Pset_obj_track_times(fileProperties.id, false), "turning off object times", "/")
            let file = H5Fcreate(temporaryPath, qpk_H5F_ACC_EXCL(), fileProperties.id, HDF5Library.defaultProperties)
            guard file >= 0 else {
                let reason = String(cString: strerror(errno))
                H5Eclear2(qpk_H5E_DEFAULT())
                throw FileAccessError.cannotWrite(path, reason)
            }
            return file
        }
        try HDF5Library.locked {
            let groupProperties = try call.handle(H5Pcreate(qpk_H5P_GROUP_CREATE()), "creating group properties", "/")
            try call.ok(H5Pset_obj_track_times(groupProperties.id, false), "turning off object times", "/")
            for group in groupPaths.sorted(by: KerasLayout.byteOrder) {
                let handle = try call.handle(
                    H5Gcreate2(file, group, HDF5Library.defaultProperties, groupProperties.id, HDF5Library.defaultProperties),
                    "creating the group", group)
                for (attributeName, attribute) in (attributes[group] ?? [:]).sorted(by: { $0.key < $1.key }) {
                    try HDF5AttributeIO.write(attribute, named: attributeName, on: handle.id, call: call, path: group)
                }
            }
            let root = try call.handle(H5Oopen(file, "/", HDF5Library.defaultProperties), "opening the root group", "/")
            for (attributeName, attribute) in (attributes["/"] ?? [:]).sorted(by: { $0.key < $1.key }) {
                try HDF5AttributeIO.write(attribute, named: attributeName, on: root.id, call: call, path: "/")
            }
            for tensor in tensors {
                try createDataset(tensor, attributes: attributes["/" + tensor.name] ?? [:], level: level)
            }
        }
    }

    deinit {
        guard !finished else { return }
        HDF5Library.locked {
            if file >= 0 { _ = H5Fclose(file) }
            H5Eclear2(qpk_H5E_DEFAULT())
        }
        unlink(temporaryURL.path)
        TemporaryFiles.unregister(temporaryURL)
    }

    /// Refuses names that would not come back unchanged from HDF5 (see the type's documentation).
    static func checkName(_ name: String, file: String) throws {
        guard !name.isEmpty else { throw HDF5Error.invalidName(file: file, name: name, reason: "empty name") }
        for part in name.split(separator: "/", omittingEmptySubsequences: false) {
            if part.isEmpty { throw HDF5Error.invalidName(file: file, name: name, reason: "empty path component (leading, trailing or double '/')") }
            if part == "." || part == ".." { throw HDF5Error.invalidName(file: file, name: name, reason: "path component '\(part)'") }
        }
    }

    /// The chunk shape for compression: the full shape, with leading axes halved (rounding up)
    /// until one chunk holds at most ``chunkBytes``.
    static func chunkShape(_ shape: [Int], elementSize: Int) -> [Int] {
        func bytes(_ dims: [Int]) -> Int {
            var total = elementSize
            for dim in dims {
                let (next, overflow) = total.multipliedReportingOverflow(by: dim)
                if overflow { return .max }
                total = next
            }
            return total
        }
        var chunk = shape
        var axis = 0
        while axis < chunk.count, bytes(chunk) > chunkBytes {
            if chunk[axis] > 1 { chunk[axis] = (chunk[axis] + 1) / 2 } else { axis += 1 }
        }
        return chunk
    }

    private func storedShape(_ tensor: TensorInfo) -> [Int] {
        HDF5Types.isSubByte(tensor.dtype) ? [tensor.byteCount] : tensor.shape
    }

    private func createDataset(_ tensor: TensorInfo, attributes: [String: HDF5Attribute], level: Int?) throws {
        let path = "/" + tensor.name
        guard tensor.shape.allSatisfy({ $0 >= 0 }), tensor.dtype.byteCount(elementCount: tensor.elementCount) != nil else {
            throw HDF5Error.invalidName(file: call.file, name: tensor.name, reason: "shape \(tensor.shape) does not fit dtype \(tensor.dtype.rawValue)")
        }
        let shape = storedShape(tensor)
        let type = try call.handle(HDF5Types.makeFileType(for: tensor.dtype), "building the datatype", path)
        let space = try call.handle(
            shape.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(shape.count), shape.map { hsize_t($0) }, nil),
            "creating the dataspace", path)
        let properties = try call.handle(H5Pcreate(qpk_H5P_DATASET_CREATE()), "creating dataset properties", path)
        try call.ok(H5Pset_obj_track_times(properties.id, false), "turning off object times", path)
        if let level, !shape.isEmpty, shape.allSatisfy({ $0 > 0 }) {
            let elementSize = HDF5Types.isSubByte(tensor.dtype) ? 1 : tensor.dtype.bitWidth / 8
            let chunk = Self.chunkShape(shape, elementSize: elementSize).map { hsize_t($0) }
            try call.ok(H5Pset_chunk(properties.id, Int32(chunk.count), chunk), "setting the chunk shape", path)
            try call.ok(H5Pset_shuffle(properties.id), "enabling shuffle", path)
            try call.ok(H5Pset_deflate(properties.id, UInt32(level)), "enabling gzip", path)
        }
        let dataset = try call.handle(
            H5Dcreate2(file, path, type.id, space.id, HDF5Library.defaultProperties, properties.id, HDF5Library.defaultProperties),
            "creating the dataset", path)
        var own = Set<String>()
        if let name = HDF5Types.opaqueNames[tensor.dtype] {
            try HDF5AttributeIO.write(.string(name), named: "dtype", on: dataset.id, call: call, path: path)
            own.insert("dtype")
            if HDF5Types.isSubByte(tensor.dtype) {
                let logical = HDF5Attribute(
                    type: "int64", shape: [tensor.shape.count], values: .integers(tensor.shape.map { Int64($0) }))
                try HDF5AttributeIO.write(logical, named: "shape", on: dataset.id, call: call, path: path)
                own.insert("shape")
            }
        }
        for (name, attribute) in attributes.sorted(by: { $0.key < $1.key }) where !own.contains(name) {
            try HDF5AttributeIO.write(attribute, named: name, on: dataset.id, call: call, path: path)
        }
    }

    public func write(_ info: TensorInfo, storage: TensorStorage) throws {
        guard let announced = pending[info.name] else {
            throw HDF5Error.unexpectedTensor(file: call.file, name: info.name, reason: "not announced, or written twice")
        }
        guard announced.dtype == info.dtype, announced.shape == info.shape else {
            throw HDF5Error.unexpectedTensor(
                file: call.file, name: info.name,
                reason: "announced as \(announced.dtype.rawValue)\(announced.shape), written as \(info.dtype.rawValue)\(info.shape)")
        }
        guard case let .dense(bytes) = storage else { throw HDF5Error.quantizedTensor(file: call.file, name: info.name) }
        guard bytes.count == info.byteCount else {
            throw HDF5Error.sizeMismatch(file: call.file, name: info.name, expected: info.byteCount, actual: bytes.count)
        }
        let path = "/" + info.name
        let call = self.call
        let file = self.file
        if info.byteCount > 0 {
            try bytes.withUnsafeBytes { raw in
                try HDF5Library.locked {
                    let dataset = try call.handle(H5Dopen2(file, path, HDF5Library.defaultProperties), "opening the dataset", path)
                    let type = try call.handle(H5Dget_type(dataset.id), "reading the datatype", path)
                    try call.ok(H5Dwrite(dataset.id, type.id, qpk_H5S_ALL(), qpk_H5S_ALL(), HDF5Library.defaultProperties, raw.baseAddress),
                                "writing the data", path)
                }
            }
        }
        pending[info.name] = nil
    }

    public func finish() throws {
        guard pending.isEmpty else {
            throw HDF5Error.missingTensors(file: call.file, names: pending.keys.sorted(by: KerasLayout.byteOrder))
        }
        let call = self.call
        let file = self.file
        try HDF5Library.locked {
            try call.ok(H5Fflush(file, H5F_SCOPE_GLOBAL), "flushing the file", "/")
            try call.ok(H5Fclose(file), "closing the file", "/")
        }
        self.file = -1
        let temporaryPath = temporaryURL.path
        let fd = open(temporaryPath, O_RDONLY)
        if fd >= 0 {
            _ = fsync(fd)
            close(fd)
        }
        guard rename(temporaryPath, url.path) == 0 else {
            throw FileAccessError.cannotWrite(url.path, String(cString: strerror(errno)))
        }
        TemporaryFiles.unregister(temporaryURL)
        finished = true
    }
}
