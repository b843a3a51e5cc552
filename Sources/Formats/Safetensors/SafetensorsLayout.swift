import QPKCore

/// Where each tensor goes in a safetensors file written the way the reference writes it.
///
/// The reference (`safetensors::tensor::prepare`) sorts tensors by dtype, descending in the
/// declaration order of its `Dtype` enum (which `DType.allCases` mirrors; roughly alignment, largest
/// first), then by name in byte order, lays them out back to back, and pads the JSON header with
/// spaces to a multiple of 8 bytes so the data buffer starts 8-byte aligned.
struct SafetensorsLayout {
    struct Placement {
        var info: TensorInfo
        /// Offset of the first byte, relative to the data buffer.
        var begin: Int
        var byteCount: Int
    }

    /// Tensors in layout order.
    var placements: [Placement]
    /// The padded header JSON (without the length prefix).
    var header: [UInt8]
    /// The size of the data buffer.
    var dataSize: Int

    /// The absolute offset where the data buffer starts.
    var dataStart: Int { 8 + header.count }
    /// The size of the whole file.
    var fileSize: Int { dataStart + dataSize }

    /// The sort rank of a dtype in the reference's `Dtype` enum.
    static func rank(of dtype: DType) -> Int {
        DType.allCases.firstIndex(of: dtype)!
    }

    /// The reference's tensor order: dtype rank descending, then name ascending (UTF-8 bytes).
    static func referenceOrder(_ a: TensorInfo, _ b: TensorInfo) -> Bool {
        let ra = rank(of: a.dtype), rb = rank(of: b.dtype)
        if ra != rb { return ra > rb }
        return JSONText.utf8Less(a.name, b.name)
    }

    /// Lays out `tensors` and builds the header.
    /// - Throws: ``SafetensorsWriterError`` for duplicate or reserved names and unrepresentable shapes.
    init(tensors: [TensorInfo], metadata: [String: String], path: String) throws(SafetensorsWriterError) {
        var names = Set<String>()
        var sized: [(TensorInfo, Int)] = []
        for tensor in tensors {
            guard tensor.name != "__metadata__" else { throw .reservedName(path: path, name: tensor.name) }
            guard names.insert(tensor.name).inserted else { throw .duplicateTensor(path: path, tensor: tensor.name) }
            guard let bytes = Self.byteCount(of: tensor) else { throw .invalidShape(path: path, tensor: tensor.name) }
            sized.append((tensor, bytes))
        }
        sized.sort { Self.referenceOrder($0.0, $1.0) }
        var offset = 0
        placements = []
        placements.reserveCapacity(sized.count)
        for (info, bytes) in sized {
            placements.append(Placement(info: info, begin: offset, byteCount: bytes))
            let (next, overflow) = offset.addingReportingOverflow(bytes)
            guard !overflow else { throw .invalidShape(path: path, tensor: info.name) }
            offset = next
        }
        dataSize = offset
        var json = "{"
        var first = true
        if !metadata.isEmpty {
            json += "\"__metadata__\":" + JSONText.object(metadata)
            first = false
        }
        for placement in placements {
            if !first { json += "," }
            first = false
            let shape = placement.info.shape.map(String.init).joined(separator: ",")
            json += JSONText.quoted(placement.info.name)
                + ":{\"dtype\":\"\(placement.info.dtype.rawValue)\",\"shape\":[\(shape)],"
                + "\"data_offsets\":[\(placement.begin),\(placement.begin + placement.byteCount)]}"
        }
        json += "}"
        var bytes = Array(json.utf8)
        let padding = (8 - bytes.count % 8) % 8
        bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: padding))
        header = bytes
    }

    /// The size of `tensor` in bytes, or `nil` for a negative dimension, an overflowing element
    /// count or a sub-byte total that is not a whole byte.
    static func byteCount(of tensor: TensorInfo) -> Int? {
        var elements = 1
        for dimension in tensor.shape {
            guard dimension >= 0 else { return nil }
            let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
            guard !overflow else { return nil }
            elements = product
        }
        return tensor.dtype.byteCount(elementCount: elements)
    }
}
