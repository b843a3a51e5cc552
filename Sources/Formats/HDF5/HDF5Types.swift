import CHDF5
import QPKCore

/// Building and classifying HDF5 datatypes: the mapping between qpk's ``DType`` and HDF5.
///
/// | DType | HDF5 dataset type |
/// |---|---|
/// | F16, F32, F64 | IEEE float, little-endian (F16 built the way h5py builds numpy's float16) |
/// | I8…I64, U8…U64 | standard little-endian integers |
/// | BOOL | h5py's enum of int8 `{FALSE: 0, TRUE: 1}` |
/// | BF16 | 2-byte opaque + dataset attribute `dtype = "bfloat16"` (Keras 3) |
/// | F8_* | 1-byte opaque + `dtype` = ml_dtypes name (`float8_e4m3fn`, …) |
/// | F4, F6_* | 1-D 1-byte opaque of the packed bytes + `dtype` + int64 `shape` attribute |
/// | C64 | compound `{r: f32, i: f32}` (h5py's complex64) |
enum HDF5Types {
    /// The `dtype` attribute names of the opaque encodings, as ml_dtypes/Keras 3 spell them.
    static let opaqueNames: [DType: String] = [
        .bf16: "bfloat16",
        .f8e4m3: "float8_e4m3fn",
        .f8e5m2: "float8_e5m2",
        .f8e8m0: "float8_e8m0fnu",
        .f8e4m3fnuz: "float8_e4m3fnuz",
        .f8e5m2fnuz: "float8_e5m2fnuz",
        .f4: "float4_e2m1fn",
        .f6e2m3: "float6_e2m3fn",
        .f6e3m2: "float6_e3m2fn",
    ]

    /// The dtype an opaque dataset's `dtype` attribute names (ml_dtypes spelling or qpk's own).
    static func opaqueDType(named name: String) -> DType? {
        if let match = opaqueNames.first(where: { $0.value == name })?.key { return match }
        if let dtype = DType(userName: name), opaqueNames[dtype] != nil { return dtype }
        return nil
    }

    /// Whether `dtype` is stored packed, several elements per byte.
    static func isSubByte(_ dtype: DType) -> Bool { dtype.bitWidth < 8 }

    /// A new IEEE half-precision type (sign 15, exponent 10…14, mantissa 0…9, bias 15).
    static func makeFloat16() -> hid_t { makeFloat(exponentBits: 5, mantissaBits: 10, bias: 15) }

    /// A new 16-bit float type with the given layout; `H5Tset_size` trims the 32-bit template.
    static func makeFloat(exponentBits: Int, mantissaBits: Int, bias: Int) -> hid_t {
        let type = H5Tcopy(qpk_H5T_IEEE_F32LE())
        guard type >= 0 else { return type }
        let ok = H5Tset_fields(type, 15, mantissaBits, exponentBits, 0, mantissaBits) >= 0
            && H5Tset_size(type, 2) >= 0
            && H5Tset_ebias(type, bias) >= 0
        if !ok {
            H5Tclose(type)
            return -1
        }
        return type
    }

    /// A new copy of the standard little-endian integer type of `bytes` width.
    static func makeInteger(bytes: Int, signed: Bool) -> hid_t {
        let base: hid_t
        switch (bytes, signed) {
        case (1, true): base = qpk_H5T_STD_I8LE()
        case (2, true): base = qpk_H5T_STD_I16LE()
        case (4, true): base = qpk_H5T_STD_I32LE()
        case (8, true): base = qpk_H5T_STD_I64LE()
        case (1, false): base = qpk_H5T_STD_U8LE()
        case (2, false): base = qpk_H5T_STD_U16LE()
        case (4, false): base = qpk_H5T_STD_U32LE()
        case (8, false): base = qpk_H5T_STD_U64LE()
        default: return -1
        }
        return H5Tcopy(base)
    }

    /// A new h5py-style boolean: an enum over int8 with `FALSE = 0` and `TRUE = 1`.
    static func makeBool() -> hid_t {
        let type = H5Tenum_create(qpk_H5T_NATIVE_INT8())
        guard type >= 0 else { return type }
        var no: Int8 = 0
        var yes: Int8 = 1
        guard H5Tenum_insert(type, "FALSE", &no) >= 0, H5Tenum_insert(type, "TRUE", &yes) >= 0 else {
            H5Tclose(type)
            return -1
        }
        return type
    }

    /// A new h5py-style complex64: a compound of two little-endian float32 fields `r` and `i`.
    static func makeComplex64() -> hid_t {
        let type = H5Tcreate(H5T_COMPOUND, 8)
        guard type >= 0 else { return type }
        guard H5Tinsert(type, "r", 0, qpk_H5T_IEEE_F32LE()) >= 0,
              H5Tinsert(type, "i", 4, qpk_H5T_IEEE_F32LE()) >= 0
        else {
            H5Tclose(type)
            return -1
        }
        return type
    }

    /// A new opaque type of `size` bytes with `tag` (no tag when empty, as h5py writes `V2`).
    static func makeOpaque(size: Int, tag: String = "") -> hid_t {
        let type = H5Tcreate(H5T_OPAQUE, size)
        guard type >= 0 else { return type }
        if !tag.isEmpty, H5Tset_tag(type, tag) < 0 {
            H5Tclose(type)
            return -1
        }
        return type
    }

    /// The file datatype the writer uses for `dtype` (a new type the caller closes).
    static func makeFileType(for dtype: DType) -> hid_t {
        switch dtype {
        case .bool: makeBool()
        case .u8: makeInteger(bytes: 1, signed: false)
        case .u16: makeInteger(bytes: 2, signed: false)
        case .u32: makeInteger(bytes: 4, signed: false)
        case .u64: makeInteger(bytes: 8, signed: false)
        case .i8: makeInteger(bytes: 1, signed: true)
        case .i16: makeInteger(bytes: 2, signed: true)
        case .i32: makeInteger(bytes: 4, signed: true)
        case .i64: makeInteger(bytes: 8, signed: true)
        case .f16: makeFloat16()
        case .f32: H5Tcopy(qpk_H5T_IEEE_F32LE())
        case .f64: H5Tcopy(qpk_H5T_IEEE_F64LE())
        case .c64: makeComplex64()
        case .bf16: makeOpaque(size: 2)
        case .f8e4m3, .f8e5m2, .f8e8m0, .f8e4m3fnuz, .f8e5m2fnuz, .f4, .f6e2m3, .f6e3m2: makeOpaque(size: 1)
        }
    }

    /// Reads an opaque type's tag (empty when it has none). Call with the lock held.
    static func tag(of type: hid_t) -> String {
        guard let pointer = H5Tget_tag(type) else {
            H5Eclear2(qpk_H5E_DEFAULT())
            return ""
        }
        defer { H5free_memory(pointer) }
        return String(cString: pointer)
    }

    /// The floating-point layout of `type`: (sign position, exponent position, exponent bits,
    /// mantissa position, mantissa bits, exponent bias), or nil on error.
    static func floatLayout(of type: hid_t) -> (Int, Int, Int, Int, Int, Int)? {
        var spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0
        guard H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize) >= 0 else { return nil }
        return (spos, epos, esize, mpos, msize, Int(H5Tget_ebias(type)))
    }

    /// Whether `type` is h5py's boolean enum (int8-sized, exactly FALSE = 0 and TRUE = 1).
    static func isBoolEnum(_ type: hid_t) -> Bool {
        guard H5Tget_size(type) == 1, H5Tget_nmembers(type) == 2 else { return false }
        var names: [String: Int8] = [:]
        for index in 0..<UInt32(2) {
            guard let name = H5Tget_member_name(type, index) else { return false }
            var value: Int8 = 0
            let ok = H5Tget_member_value(type, index, &value) >= 0
            names[String(cString: name)] = value
            H5free_memory(name)
            guard ok else { return false }
        }
        return names == ["FALSE": 0, "TRUE": 1]
    }
}
