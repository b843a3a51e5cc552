import QPKCore

/// The fixed byte layout of a QPK file (`spec/qpk-format.md` §2–§3).
public enum QPKLayout {
    /// `89 51 50 4B 0D 0A 1A 0A`: `\x89QPK\r\n\x1a\n`, in the PNG style (§2).
    public static let magic: [UInt8] = [0x89, 0x51, 0x50, 0x4B, 0x0D, 0x0A, 0x1A, 0x0A]
    /// The version of a file without v2 features: files that need none stay byte-identical to v1.
    public static let version: UInt32 = 1
    /// The version of a file with a tensor that uses a v2 feature (packed or implicit
    /// zero-points, a group index, a codebook, a transform or log-coded scales;
    /// `spec/qpk-format.md` §2).
    public static let version2: UInt32 = 2
    /// The versions a reader accepts.
    public static let supportedVersions: Set<UInt32> = [1, 2]
    public static let preambleSize = 64
    /// Every blob and the header start at a multiple of this.
    public static let alignment = 64
    /// The largest JSON header a reader accepts (256 MiB).
    public static let maxHeaderLength: UInt64 = 1 << 28
    /// The largest index an outlier blob can hold (indices are u32).
    public static let maxOutlierIndex: Int64 = Int64(UInt32.max)
}

/// The 64-byte preamble (`spec/qpk-format.md` §2).
struct QPKPreamble: Equatable {
    var version: UInt32 = QPKLayout.version
    var flags: UInt32 = 0
    var headerOffset: UInt64
    var headerLength: UInt64
    var headerCRC: UInt32
    var reservedIsZero = true
    var storedCRC: UInt32 = 0

    /// The 64 bytes, with the preamble CRC over bytes 0–59 at 60.
    func encoded() -> [UInt8] {
        var bytes = QPKLayout.magic
        bytes.appendLittleEndian(version)
        bytes.appendLittleEndian(flags)
        bytes.appendLittleEndian(headerOffset)
        bytes.appendLittleEndian(headerLength)
        bytes.appendLittleEndian(headerCRC)
        bytes.append(contentsOf: [UInt8](repeating: 0, count: 24))
        bytes.appendLittleEndian(CRC32.checksum(bytes))
        return bytes
    }

    /// Reads the fields of a 64-byte preamble (the magic is checked by the caller).
    init(decoding bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count >= QPKLayout.preambleSize)
        version = bytes.loadLittleEndian(UInt32.self, at: 8)
        flags = bytes.loadLittleEndian(UInt32.self, at: 12)
        headerOffset = bytes.loadLittleEndian(UInt64.self, at: 16)
        headerLength = bytes.loadLittleEndian(UInt64.self, at: 24)
        headerCRC = bytes.loadLittleEndian(UInt32.self, at: 32)
        reservedIsZero = bytes[36..<60].allSatisfy { $0 == 0 }
        storedCRC = bytes.loadLittleEndian(UInt32.self, at: 60)
    }

    init(headerOffset: UInt64, headerLength: UInt64, headerCRC: UInt32) {
        self.headerOffset = headerOffset
        self.headerLength = headerLength
        self.headerCRC = headerCRC
    }
}

/// The blobs a tensor can have (`spec/qpk-format.md` §3.1).
public enum QPKBlobKind: String, Sendable, CaseIterable, Codable, Comparable {
    case data
    case codes
    case scales
    case zeros
    case outlierIndices = "outlier_indices"
    case outlierValues = "outlier_values"
    /// v2: one group number per column, packed (§5.5).
    case groupIndex = "group_index"
    /// v2: the `2^bits` fp16 values the codes stand for (§5.7).
    case codebook
    /// v2: one sign bit per column of the Hadamard transform (§5.6).
    case transformSigns = "transform_signs"
    /// v2: one fp16 scale per row, below which the log-coded group scales sit (§5.8).
    case rowScales = "row_scales"

    public static func < (lhs: QPKBlobKind, rhs: QPKBlobKind) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// Where one blob lives: absolute offset, length and CRC-32.
public struct QPKBlobReference: Sendable, Equatable, Codable {
    public var offset: Int
    public var length: Int
    public var crc32: UInt32

    public init(offset: Int, length: Int, crc32: UInt32) {
        self.offset = offset
        self.length = length
        self.crc32 = crc32
    }
}

extension [UInt8] {
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        var little = value.littleEndian
        Swift.withUnsafeBytes(of: &little) { append(contentsOf: $0) }
    }
}

extension UnsafeRawBufferPointer {
    /// The little-endian integer at `offset` (any alignment). The caller checks the bounds.
    func loadLittleEndian<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}

/// The §5.2 LSB-first bit stream, for the small v2 arrays stored like codes (packed
/// zero-points, the group index, log-coded scales): value `i` occupies stream bits `[i·bits, (i+1)·bits)`, stream
/// bit `k` is bit `k mod 8` of byte `k / 8`. (Quantize's `BitPacking` is the fast path for codes.)
enum QPKBitStream {
    /// `values` (each `< 2^bits`) as `ceil(count·bits/8)` bytes, unused high bits zero.
    static func pack<Value: FixedWidthInteger>(_ values: [Value], bits: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: (values.count * bits + 7) / 8)
        for (i, value) in values.enumerated() {
            for b in 0..<bits where value >> b & 1 == 1 {
                let k = i * bits + b
                bytes[k >> 3] |= 1 << UInt8(k & 7)
            }
        }
        return bytes
    }

    /// The first `count` values of `bits` bits in `bytes` (which holds at least
    /// `ceil(count·bits/8)` bytes).
    static func unpack<Value: FixedWidthInteger>(
        _ bytes: UnsafeRawBufferPointer, bits: Int, count: Int, as type: Value.Type = UInt8.self
    ) -> [Value] {
        (0..<count).map { i in
            var value: Value = 0
            for b in 0..<bits {
                let k = i * bits + b
                value |= Value(bytes[k >> 3] >> UInt8(k & 7) & 1) << b
            }
            return value
        }
    }
}
