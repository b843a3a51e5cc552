import CHDF5
import Foundation
import QPKCore

/// Reading and writing ``HDF5Attribute`` values through libhdf5. Call everything with the library lock held.
enum HDF5AttributeIO {
    /// The outcome of reading one attribute: its value, or why it cannot be carried over.
    enum Outcome {
        case value(HDF5Attribute)
        case unsupported(String)
    }

    /// Upper bound on attribute elements, so a corrupt dataspace cannot make us allocate wildly.
    static let maximumElements = 1 << 26

    /// Reads every attribute of `object` (in HDF5's name order).
    static func readAll(
        of object: hid_t, path: String, call: HDF5Call
    ) throws -> [(name: String, outcome: Outcome)] {
        let count = qpk_attribute_count(object)
        guard count >= 0 else { throw call.failure("counting attributes", path) }
        var result: [(String, Outcome)] = []
        for index in 0..<hsize_t(count) {
            let attribute = try call.handle(
                H5Aopen_by_idx(object, ".", H5_INDEX_NAME, H5_ITER_INC, index,
                               HDF5Library.defaultProperties, HDF5Library.defaultProperties),
                "opening attribute #\(index)", path)
            let length = try call.count(H5Aget_name(attribute.id, 0, nil), "reading an attribute name", path)
            var bytes = [CChar](repeating: 0, count: length + 1)
            try call.ok(herr_t(truncatingIfNeeded: H5Aget_name(attribute.id, length + 1, &bytes)),
                        "reading an attribute name", path)
            let name = String(decoding: bytes.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            result.append((name, try read(attribute.id, call: call, object: "\(path)@\(name)")))
        }
        return result
    }

    /// Reads one attribute.
    static func read(_ attribute: hid_t, call: HDF5Call, object: String) throws -> Outcome {
        let space = try call.handle(H5Aget_space(attribute), "reading the dataspace", object)
        let shape: [Int]?
        switch H5Sget_simple_extent_type(space.id) {
        case H5S_NULL: shape = nil
        case H5S_SCALAR: shape = []
        case H5S_SIMPLE:
            let rank = try call.count(H5Sget_simple_extent_ndims(space.id), "reading the rank", object)
            var dims = [hsize_t](repeating: 0, count: rank)
            try call.ok(H5Sget_simple_extent_dims(space.id, &dims, nil), "reading the dimensions", object)
            shape = dims.map { Int(clamping: $0) }
        default:
            throw call.failure("reading the dataspace", object)
        }
        var count = 0
        if let shape {
            var product = 1
            for dim in shape {
                let (next, overflow) = product.multipliedReportingOverflow(by: dim)
                guard !overflow, next <= maximumElements else { return .unsupported("more than \(maximumElements) elements") }
                product = next
            }
            count = product
        }
        let type = try call.handle(H5Aget_type(attribute), "reading the datatype", object)
        let size = H5Tget_size(type.id)
        guard size > 0 else { throw call.failure("reading the datatype size", object) }
        let bigEndian = H5Tget_order(type.id) == H5T_ORDER_BE ? "big" : nil

        func raw(_ memoryType: hid_t, elementSize: Int) throws -> [UInt8] {
            var buffer = [UInt8](repeating: 0, count: max(count * elementSize, 1))
            if shape != nil, count > 0 {
                try call.ok(H5Aread(attribute, memoryType, &buffer), "reading the value", object)
            }
            return Array(buffer.prefix(count * elementSize))
        }

        switch H5Tget_class(type.id) {
        case H5T_STRING:
            let variable = try call.flag(H5Tis_variable_str(type.id), "reading the string kind", object)
            let cset = H5Tget_cset(type.id)
            let pad = H5Tget_strpad(type.id)
            let charset = cset == H5T_CSET_UTF8 ? "utf-8" : "ascii"
            let padding = pad == H5T_STR_NULLPAD ? "nullpad" : pad == H5T_STR_SPACEPAD ? "spacepad" : "nullterm"
            var strings: [String] = []
            if variable {
                let memory = try call.handle(H5Tcopy(qpk_H5T_C_S1()), "copying a string type", object)
                try call.ok(H5Tset_size(memory.id, qpk_H5T_VARIABLE()), "setting a string size", object)
                try call.ok(H5Tset_cset(memory.id, cset), "setting a string charset", object)
                if shape != nil, count > 0 {
                    var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
                    try call.ok(H5Aread(attribute, memory.id, &pointers), "reading the value", object)
                    strings = pointers.map { $0.map { String(cString: $0) } ?? "" }
                    _ = qpk_reclaim_vlen(memory.id, space.id, &pointers)
                }
                return .value(HDF5Attribute(
                    type: "string", shape: shape, values: .strings(strings), charset: charset, padding: padding))
            }
            let bytes = try raw(type.id, elementSize: size)
            for index in 0..<count {
                var element = bytes[(index * size)..<((index + 1) * size)]
                switch padding {
                case "nullterm": if let end = element.firstIndex(of: 0) { element = element[..<end] }
                case "nullpad": while element.last == 0 { element = element.dropLast() }
                default: break
                }
                strings.append(String(decoding: element, as: UTF8.self))
            }
            return .value(HDF5Attribute(
                type: "string", shape: shape, values: .strings(strings), charset: charset, length: size,
                padding: padding))
        case H5T_INTEGER:
            let signed = H5Tget_sign(type.id) == H5T_SGN_2
            guard [1, 2, 4, 8].contains(size) else { return .unsupported("\(size)-byte integer") }
            let memory = try call.handle(HDF5Types.makeInteger(bytes: size, signed: signed), "building an integer type", object)
            let bytes = try raw(memory.id, elementSize: size)
            let typeName = "\(signed ? "int" : "uint")\(size * 8)"
            if signed {
                let values = (0..<count).map { loadInteger(bytes, index: $0, size: size, signed: true) }
                return .value(HDF5Attribute(type: typeName, shape: shape, values: .integers(values), byteOrder: bigEndian))
            }
            let values = (0..<count).map { UInt64(bitPattern: loadInteger(bytes, index: $0, size: size, signed: false)) }
            return .value(HDF5Attribute(type: typeName, shape: shape, values: .unsignedIntegers(values), byteOrder: bigEndian))
        case H5T_FLOAT:
            let values: [Double]
            switch size {
            case 2:
                guard let layout = HDF5Types.floatLayout(of: type.id), layout == (15, 10, 5, 0, 10, 15) else {
                    return .unsupported("2-byte float that is not IEEE half precision")
                }
                let memory = try call.handle(HDF5Types.makeFloat16(), "building a float16 type", object)
                let bytes = try raw(memory.id, elementSize: 2)
                values = (0..<count).map {
                    Double(Float16(bitPattern: UInt16(truncatingIfNeeded: loadInteger(bytes, index: $0, size: 2, signed: false))))
                }
            case 4:
                let bytes = try raw(qpk_H5T_IEEE_F32LE(), elementSize: 4)
                values = (0..<count).map {
                    Double(Float(bitPattern: UInt32(truncatingIfNeeded: loadInteger(bytes, index: $0, size: 4, signed: false))))
                }
            case 8:
                let bytes = try raw(qpk_H5T_IEEE_F64LE(), elementSize: 8)
                values = (0..<count).map {
                    Double(bitPattern: UInt64(bitPattern: loadInteger(bytes, index: $0, size: 8, signed: false)))
                }
            default:
                return .unsupported("\(size)-byte float")
            }
            return .value(HDF5Attribute(type: "float\(size * 8)", shape: shape, values: .floats(values), byteOrder: bigEndian))
        case H5T_ENUM:
            guard HDF5Types.isBoolEnum(type.id) else { return .unsupported("enum type other than h5py's bool") }
            let bytes = try raw(type.id, elementSize: 1)
            return .value(HDF5Attribute(type: "bool", shape: shape, values: .bools(bytes.map { $0 != 0 })))
        case H5T_OPAQUE:
            let bytes = try raw(type.id, elementSize: size)
            let hex = (0..<count).map { index in
                bytes[(index * size)..<((index + 1) * size)].map { String(format: "%02x", $0) }.joined()
            }
            return .value(HDF5Attribute(
                type: "opaque", shape: shape, values: .hex(hex), tag: HDF5Types.tag(of: type.id), size: size))
        case H5T_COMPOUND: return .unsupported("compound type")
        case H5T_REFERENCE: return .unsupported("object or region reference")
        case H5T_VLEN: return .unsupported("variable-length sequence")
        case H5T_ARRAY: return .unsupported("array type")
        case H5T_BITFIELD: return .unsupported("bitfield type")
        case H5T_TIME: return .unsupported("time type")
        default: throw call.failure("reading the datatype class", object)
        }
    }

    /// Little-endian load of element `index` of `size` bytes, sign- or zero-extended to 64 bits.
    private static func loadInteger(_ bytes: [UInt8], index: Int, size: Int, signed: Bool) -> Int64 {
        var value: UInt64 = 0
        for byte in 0..<size { value |= UInt64(bytes[index * size + byte]) << (8 * UInt64(byte)) }
        if signed, size < 8, value & (1 << (8 * UInt64(size) - 1)) != 0 { value |= ~0 << (8 * UInt64(size)) }
        return Int64(bitPattern: value)
    }

    /// Creates attribute `name` on `object` with exactly the type, shape and value `attribute` describes.
    static func write(
        _ attribute: HDF5Attribute, named name: String, on object: hid_t, call: HDF5Call, path: String
    ) throws {
        let label = "\(path)@\(name)"
        func invalid(_ reason: String) -> HDF5Error {
            .invalidMetadata(file: call.file, key: "hdf5.attributes", reason: "\(label): \(reason)")
        }
        let space: HDF5Handle
        switch attribute.shape {
        case nil: space = try call.handle(H5Screate(H5S_NULL), "creating a dataspace", label)
        case []?: space = try call.handle(H5Screate(H5S_SCALAR), "creating a dataspace", label)
        case let dims?:
            guard dims.allSatisfy({ $0 >= 0 }) else { throw invalid("negative dimension") }
            let hdims = dims.map { hsize_t($0) }
            space = try call.handle(H5Screate_simple(Int32(dims.count), hdims, nil), "creating a dataspace", label)
        }
        let count = attribute.values.count
        let big = attribute.byteOrder == "big"
        let fileType: HDF5Handle
        let memoryType: HDF5Handle
        var buffer: [UInt8] = []

        func setOrder(_ type: HDF5Handle) throws {
            if big { try call.ok(H5Tset_order(type.id, H5T_ORDER_BE), "setting the byte order", label) }
        }
        func store(_ value: UInt64, size: Int) {
            for byte in 0..<size { buffer.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(byte)))) }
        }

        switch (attribute.type, attribute.values) {
        case let ("string", .strings(strings)):
            fileType = try call.handle(H5Tcopy(qpk_H5T_C_S1()), "copying a string type", label)
            let cset = attribute.charset == "utf-8" ? H5T_CSET_UTF8 : H5T_CSET_ASCII
            let pad = attribute.padding == "nullpad" ? H5T_STR_NULLPAD
                : attribute.padding == "spacepad" ? H5T_STR_SPACEPAD : H5T_STR_NULLTERM
            try call.ok(H5Tset_size(fileType.id, attribute.length ?? qpk_H5T_VARIABLE()), "setting a string size", label)
            try call.ok(H5Tset_cset(fileType.id, cset), "setting a string charset", label)
            try call.ok(H5Tset_strpad(fileType.id, pad), "setting a string padding", label)
            let created = try call.handle(
                H5Acreate2(object, name, fileType.id, space.id, HDF5Library.defaultProperties, HDF5Library.defaultProperties),
                "creating attribute", label)
            guard attribute.shape != nil, count > 0 else { return }
            if let length = attribute.length {
                guard length > 0 else { throw invalid("fixed string length must be positive") }
                for string in strings {
                    let utf8 = Array(string.utf8)
                    guard utf8.count <= length else { throw invalid("string longer than its fixed length \(length)") }
                    buffer += utf8
                    buffer += [UInt8](repeating: pad == H5T_STR_SPACEPAD ? 0x20 : 0, count: length - utf8.count)
                }
                try call.ok(H5Awrite(created.id, fileType.id, buffer), "writing attribute", label)
            } else {
                var cStrings = strings.map { strdup($0) }
                defer { cStrings.forEach { free($0) } }
                try call.ok(H5Awrite(created.id, fileType.id, &cStrings), "writing attribute", label)
            }
            return
        case let (type, .integers(values)) where type.hasPrefix("int"):
            guard let bits = Int(type.dropFirst(3)), [8, 16, 32, 64].contains(bits) else { throw invalid("unknown type \(type)") }
            memoryType = try call.handle(HDF5Types.makeInteger(bytes: bits / 8, signed: true), "building a type", label)
            fileType = try call.handle(HDF5Types.makeInteger(bytes: bits / 8, signed: true), "building a type", label)
            try setOrder(fileType)
            values.forEach { store(UInt64(bitPattern: $0), size: bits / 8) }
        case let (type, .unsignedIntegers(values)) where type.hasPrefix("uint"):
            guard let bits = Int(type.dropFirst(4)), [8, 16, 32, 64].contains(bits) else { throw invalid("unknown type \(type)") }
            memoryType = try call.handle(HDF5Types.makeInteger(bytes: bits / 8, signed: false), "building a type", label)
            fileType = try call.handle(HDF5Types.makeInteger(bytes: bits / 8, signed: false), "building a type", label)
            try setOrder(fileType)
            values.forEach { store($0, size: bits / 8) }
        case let ("float16", .floats(values)):
            memoryType = try call.handle(HDF5Types.makeFloat16(), "building a type", label)
            fileType = try call.handle(HDF5Types.makeFloat16(), "building a type", label)
            try setOrder(fileType)
            values.forEach { store(UInt64(Float16($0).bitPattern), size: 2) }
        case let ("float32", .floats(values)):
            memoryType = try call.handle(H5Tcopy(qpk_H5T_IEEE_F32LE()), "building a type", label)
            fileType = try call.handle(H5Tcopy(qpk_H5T_IEEE_F32LE()), "building a type", label)
            try setOrder(fileType)
            values.forEach { store(UInt64(Float($0).bitPattern), size: 4) }
        case let ("float64", .floats(values)):
            memoryType = try call.handle(H5Tcopy(qpk_H5T_IEEE_F64LE()), "building a type", label)
            fileType = try call.handle(H5Tcopy(qpk_H5T_IEEE_F64LE()), "building a type", label)
            try setOrder(fileType)
            values.forEach { store($0.bitPattern, size: 8) }
        case let ("bool", .bools(values)):
            memoryType = try call.handle(HDF5Types.makeBool(), "building a type", label)
            fileType = try call.handle(HDF5Types.makeBool(), "building a type", label)
            buffer = values.map { $0 ? 1 : 0 }
        case let ("opaque", .hex(values)):
            guard let size = attribute.size, size > 0 else { throw invalid("opaque attribute without a positive size") }
            memoryType = try call.handle(HDF5Types.makeOpaque(size: size, tag: attribute.tag ?? ""), "building a type", label)
            fileType = try call.handle(HDF5Types.makeOpaque(size: size, tag: attribute.tag ?? ""), "building a type", label)
            for value in values {
                guard let bytes = hexBytes(value), bytes.count == size else { throw invalid("bad hex value") }
                buffer += bytes
            }
        default:
            throw invalid("type \(attribute.type) does not match its values")
        }
        let created = try call.handle(
            H5Acreate2(object, name, fileType.id, space.id, HDF5Library.defaultProperties, HDF5Library.defaultProperties),
            "creating attribute", label)
        guard attribute.shape != nil, count > 0 else { return }
        try call.ok(H5Awrite(created.id, memoryType.id, buffer), "writing attribute", label)
    }

    private static func hexBytes(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let byte = UInt8(String(decoding: digits[index..<index + 2], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }
}
