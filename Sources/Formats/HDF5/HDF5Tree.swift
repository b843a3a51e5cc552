import CHDF5
import Foundation
import QPKCore

/// How the reader turns a dataset's stored elements into a tensor's bytes.
enum HDF5MemoryType: Sendable, Equatable {
    case integer(bytes: Int, signed: Bool)
    case float16
    /// A 2-byte HDF5 *float* with bfloat16's layout (not the Keras opaque form).
    case bfloat16Float
    case float32
    case float64
    /// Bytes as stored: opaque encodings and h5py's bool enum.
    case asStored
    case complex64

    /// A new memory datatype for reading `dataset` (closed by the caller). Call with the lock held.
    func make(for dataset: hid_t) -> hid_t {
        switch self {
        case let .integer(bytes, signed): HDF5Types.makeInteger(bytes: bytes, signed: signed)
        case .float16: HDF5Types.makeFloat16()
        case .bfloat16Float: HDF5Types.makeFloat(exponentBits: 8, mantissaBits: 7, bias: 127)
        case .float32: H5Tcopy(qpk_H5T_IEEE_F32LE())
        case .float64: H5Tcopy(qpk_H5T_IEEE_F64LE())
        case .asStored: H5Dget_type(dataset)
        case .complex64: HDF5Types.makeComplex64()
        }
    }
}

/// Everything the reader needs to read one dataset as a tensor.
struct HDF5DatasetPlan: Sendable {
    /// The HDF5 path, with its leading `/`.
    var path: String
    var info: TensorInfo
    /// The dataspace as stored (differs from `info.shape` only for packed sub-byte dtypes).
    var storedShape: [Int]
    var memoryType: HDF5MemoryType
    /// Bytes of one stored element in memory.
    var elementSize: Int
    /// Total bytes of the tensor.
    var byteCount: Int
}

/// The result of walking a file's whole tree: datasets that are tensors, skipped objects, every
/// group, and every attribute.
struct HDF5Tree {
    var plans: [HDF5DatasetPlan] = []
    /// Datasets and links that are not tensors, and attributes that cannot be carried over.
    var skipped: [(path: String, reason: String)] = []
    /// Paths of skipped *datasets* whose element type has no qpk dtype (for validate).
    var unsupportedDatasets: [(path: String, reason: String)] = []
    /// Every group path except `/`.
    var groups: [String] = []
    /// Object path → attribute name → value, for every readable attribute.
    var attributes: [String: [String: HDF5Attribute]] = [:]
    /// Object path → attributes the dtype mapping consumed (an opaque dataset's `dtype`, `shape`),
    /// which the writer recreates by itself and metadata therefore leaves out.
    var consumed: [String: Set<String>] = [:]

    /// Walks the tree below the root of `file`. Call with the lock held.
    static func walk(file: hid_t, call: HDF5Call) throws -> HDF5Tree {
        var tree = HDF5Tree()
        var visited = Set<[UInt8]>()
        let root = try call.handle(H5Oopen(file, "/", HDF5Library.defaultProperties), "opening the root group", "/")
        visited.insert(try objectKey(root.id, call: call, path: "/"))
        try tree.collectAttributes(of: root.id, path: "/", call: call, consumed: [])
        try tree.walkGroup(root.id, path: "/", visited: &visited, call: call)
        return tree
    }

    private static func objectKey(_ object: hid_t, call: HDF5Call, path: String) throws -> [UInt8] {
        var key = [UInt8](repeating: 0, count: 16)
        try call.ok(qpk_object_key(object, &key), "identifying the object", path)
        return key
    }

    private static func child(_ parent: String, _ name: String) -> String {
        parent == "/" ? "/" + name : parent + "/" + name
    }

    private mutating func collectAttributes(
        of object: hid_t, path: String, call: HDF5Call, consumed: Set<String>
    ) throws {
        if !consumed.isEmpty { self.consumed[path] = consumed }
        for (name, outcome) in try HDF5AttributeIO.readAll(of: object, path: path, call: call) {
            switch outcome {
            case let .value(attribute): attributes[path, default: [:]][name] = attribute
            case let .unsupported(reason): skipped.append((path: "\(path)@\(name)", reason: "attribute not carried over: \(reason)"))
            }
        }
    }

    private mutating func walkGroup(
        _ group: hid_t, path: String, visited: inout Set<[UInt8]>, call: HDF5Call
    ) throws {
        var info = H5G_info_t()
        try call.ok(H5Gget_info(group, &info), "listing the group", path)
        for index in 0..<info.nlinks {
            let length = try call.count(
                H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, index, nil, 0, HDF5Library.defaultProperties),
                "reading a link name", path)
            var bytes = [CChar](repeating: 0, count: length + 1)
            _ = try call.count(
                H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, index, &bytes, length + 1, HDF5Library.defaultProperties),
                "reading a link name", path)
            let name = String(decoding: bytes.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let childPath = Self.child(path, name)
            HDF5Progress.tick()
            let linkType = qpk_link_type(group, bytes)
            guard linkType >= 0 else { throw call.failure("reading the link", childPath) }
            guard linkType == 0 else {
                skipped.append((path: childPath, reason: linkType == 1 ? "soft link, not followed" : "external or user-defined link, not followed"))
                continue
            }
            let object = try call.handle(H5Oopen(group, bytes, HDF5Library.defaultProperties), "opening the object", childPath)
            guard visited.insert(try Self.objectKey(object.id, call: call, path: childPath)).inserted else {
                skipped.append((path: childPath, reason: "second hard link to an object already listed"))
                continue
            }
            switch H5Iget_type(object.id) {
            case H5I_GROUP:
                groups.append(childPath)
                try collectAttributes(of: object.id, path: childPath, call: call, consumed: [])
                try walkGroup(object.id, path: childPath, visited: &visited, call: call)
            case H5I_DATASET:
                try addDataset(object.id, path: childPath, call: call)
            default:
                skipped.append((path: childPath, reason: "named datatype, not a dataset"))
            }
        }
    }

    private mutating func addDataset(_ dataset: hid_t, path: String, call: HDF5Call) throws {
        let all = try HDF5AttributeIO.readAll(of: dataset, path: path, call: call)
        var own: [String: HDF5Attribute] = [:]
        for case let (name, .value(attribute)) in all { own[name] = attribute }
        switch try Self.classify(dataset, path: path, attributes: own, call: call) {
        case let .tensor(plan, consumed):
            plans.append(plan)
            try collectAttributes(of: dataset, path: path, call: call, consumed: consumed)
        case let .skip(reason):
            skipped.append((path: path, reason: reason))
            unsupportedDatasets.append((path: path, reason: reason))
            try collectAttributes(of: dataset, path: path, call: call, consumed: [])
        }
    }

    private enum Classification {
        case tensor(HDF5DatasetPlan, consumed: Set<String>)
        case skip(String)
    }

    /// Decides whether a dataset is a tensor and how to read it (the table in ``HDF5Types``).
    private static func classify(
        _ dataset: hid_t, path: String, attributes: [String: HDF5Attribute], call: HDF5Call
    ) throws -> Classification {
        let space = try call.handle(H5Dget_space(dataset), "reading the dataspace", path)
        var stored: [Int]
        switch H5Sget_simple_extent_type(space.id) {
        case H5S_NULL: return .skip("null dataspace (h5py Empty): holds no data")
        case H5S_SCALAR: stored = []
        case H5S_SIMPLE:
            let rank = try call.count(H5Sget_simple_extent_ndims(space.id), "reading the rank", path)
            var dims = [hsize_t](repeating: 0, count: rank)
            try call.ok(H5Sget_simple_extent_dims(space.id, &dims, nil), "reading the dimensions", path)
            guard dims.allSatisfy({ $0 <= hsize_t(Int.max) }) else { return .skip("dimension too large") }
            stored = dims.map { Int($0) }
        default: throw call.failure("reading the dataspace", path)
        }
        let type = try call.handle(H5Dget_type(dataset), "reading the datatype", path)
        let size = H5Tget_size(type.id)
        guard size > 0 else { throw call.failure("reading the datatype size", path) }
        var shape = stored
        var consumed = Set<String>()
        let dtype: DType
        let memory: HDF5MemoryType
        switch H5Tget_class(type.id) {
        case H5T_INTEGER:
            let signed = H5Tget_sign(type.id) == H5T_SGN_2
            switch (size, signed) {
            case (1, true): dtype = .i8
            case (2, true): dtype = .i16
            case (4, true): dtype = .i32
            case (8, true): dtype = .i64
            case (1, false): dtype = .u8
            case (2, false): dtype = .u16
            case (4, false): dtype = .u32
            case (8, false): dtype = .u64
            default: return .skip("\(size)-byte integer")
            }
            memory = .integer(bytes: size, signed: signed)
        case H5T_FLOAT:
            let layout = HDF5Types.floatLayout(of: type.id)
            switch size {
            case 2 where layout.map { $0 == (15, 10, 5, 0, 10, 15) } == true: (dtype, memory) = (.f16, .float16)
            case 2 where layout.map { $0 == (15, 7, 8, 0, 7, 127) } == true: (dtype, memory) = (.bf16, .bfloat16Float)
            case 4: (dtype, memory) = (.f32, .float32)
            case 8: (dtype, memory) = (.f64, .float64)
            default: return .skip("\(size)-byte float with a layout qpk has no dtype for")
            }
        case H5T_ENUM:
            guard HDF5Types.isBoolEnum(type.id) else { return .skip("enum type other than h5py's bool") }
            (dtype, memory) = (.bool, .asStored)
        case H5T_OPAQUE:
            guard let name = attributes["dtype"]?.strings.first, attributes["dtype"]?.shape == [],
                  let named = HDF5Types.opaqueDType(named: name)
            else { return .skip("opaque type without a recognised `dtype` attribute") }
            consumed.insert("dtype")
            if HDF5Types.isSubByte(named) {
                guard size == 1, stored.count == 1, let logical = attributes["shape"],
                      case let .integers(dims) = logical.values, logical.shape?.count == 1,
                      dims.allSatisfy({ $0 >= 0 && $0 <= Int64(Int.max) })
                else { return .skip("packed \(named.displayName) without a valid 1-D int64 `shape` attribute") }
                shape = dims.map { Int($0) }
                consumed.insert("shape")
                guard let count = checkedProduct(shape),
                      named.byteCount(elementCount: count) == stored[0]
                else { return .skip("packed \(named.displayName): `shape` does not match the stored byte count") }
            } else {
                guard size == named.bitWidth / 8 else { return .skip("\(size)-byte opaque labelled \(name)") }
            }
            (dtype, memory) = (named, .asStored)
        case H5T_COMPOUND:
            guard isComplex64(type.id) else { return .skip("compound type") }
            (dtype, memory) = (.c64, .complex64)
        case H5T_STRING: return .skip("string dataset")
        case H5T_REFERENCE: return .skip("object or region references")
        case H5T_VLEN: return .skip("variable-length sequences")
        case H5T_ARRAY: return .skip("array element type")
        case H5T_BITFIELD: return .skip("bitfield type")
        case H5T_TIME: return .skip("time type")
        default: throw call.failure("reading the datatype class", path)
        }
        guard let storedCount = checkedProduct(stored), let elementCount = checkedProduct(shape),
              let byteCount = dtype.byteCount(elementCount: elementCount)
        else { return .skip("element count overflows") }
        let elementSize = HDF5Types.isSubByte(dtype) ? 1 : dtype.bitWidth / 8
        guard storedCount.multipliedReportingOverflow(by: elementSize) == (byteCount, false) else {
            return .skip("stored size does not match dtype and shape")
        }
        let info = TensorInfo(name: String(path.dropFirst()), dtype: dtype, shape: shape)
        return .tensor(
            HDF5DatasetPlan(
                path: path, info: info, storedShape: stored, memoryType: memory, elementSize: elementSize,
                byteCount: byteCount),
            consumed: consumed)
    }

    private static func checkedProduct(_ dims: [Int]) -> Int? {
        var product = 1
        for dim in dims {
            let (next, overflow) = product.multipliedReportingOverflow(by: dim)
            guard !overflow else { return nil }
            product = next
        }
        return product
    }

    /// h5py's complex64: a compound of exactly two 4-byte floats named `r` and `i`.
    private static func isComplex64(_ type: hid_t) -> Bool {
        guard H5Tget_nmembers(type) == 2, H5Tget_size(type) == 8 else { return false }
        var names: [String] = []
        for index in 0..<UInt32(2) {
            guard let name = H5Tget_member_name(type, index) else { return false }
            names.append(String(cString: name))
            H5free_memory(name)
            let member = H5Tget_member_type(type, index)
            guard member >= 0 else { return false }
            defer { H5Tclose(member) }
            guard H5Tget_class(member) == H5T_FLOAT, H5Tget_size(member) == 4 else { return false }
        }
        return names == ["r", "i"]
    }
}
