/// The description of one tensor: its name, element type and shape (row-major).
public struct TensorInfo: Sendable, Hashable, Codable {
    public var name: String
    public var dtype: DType
    public var shape: [Int]

    public init(name: String, dtype: DType, shape: [Int]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
    }

    /// The number of elements (1 for a scalar, 0 for an empty tensor). A zero dimension makes it 0
    /// whatever the others are (readers check that the product of the others fits: with no zero,
    /// every partial product is at most the whole, so none overflows).
    public var elementCount: Int { shape.contains(0) ? 0 : shape.reduce(1, *) }

    /// The size of the tensor's data in its own dtype.
    public var byteCount: Int { dtype.byteCount(elementCount: elementCount) ?? 0 }

    /// The tensor viewed as a matrix: the last axis is the columns, all leading axes are rows.
    /// A scalar or vector is one row.
    public var matrixShape: (rows: Int, columns: Int) {
        guard let last = shape.last else { return (1, 1) }
        var rows = 1
        for dimension in shape.dropLast() {
            let (product, overflow) = rows.multipliedReportingOverflow(by: dimension)
            // Only an empty tensor (last dimension 0) can get here, as readers reject shapes whose
            // element count overflows: it has no rows to visit.
            if overflow { return (0, last) }
            rows = product
        }
        return (rows, last)
    }
}

/// A read-only view of a tensor's bytes plus the object that keeps them alive
/// (a ``MappedFile`` or an owned ``ByteBuffer``).
public struct TensorBytes: @unchecked Sendable {
    public let bytes: UnsafeRawBufferPointer
    let owner: AnyObject?

    public init(_ bytes: UnsafeRawBufferPointer, owner: AnyObject?) {
        self.bytes = bytes
        self.owner = owner
    }

    /// Bytes that own their storage.
    public init(copying bytes: some Collection<UInt8>) {
        let buffer = ByteBuffer(count: bytes.count)
        buffer.mutableBytes.copyBytes(from: Array(bytes))
        self.init(UnsafeRawBufferPointer(buffer.mutableBytes), owner: buffer)
    }

    /// Bytes that own `buffer`.
    public init(_ buffer: ByteBuffer) {
        self.init(UnsafeRawBufferPointer(buffer.mutableBytes), owner: buffer)
    }

    public var count: Int { bytes.count }

    /// Tells the owner that these bytes will not be read again soon: a memory-mapped file drops
    /// their pages from the process (they stay in the page cache and come back on the next read),
    /// so a conversion's resident memory does not grow with the model. Owned buffers ignore it.
    public func releaseResidentPages() {
        (owner as? ResidentPageReleasing)?.releaseResidentPages(bytes)
    }

    /// Tells the owner that these bytes are about to be read whole: a memory-mapped file maps
    /// their pages in one call instead of one page fault per few pages. Owned buffers ignore it.
    public func populateResidentPages() {
        (owner as? ResidentPageReleasing)?.populateResidentPages(bytes)
    }

    /// Runs `body` with the bytes while keeping their owner alive.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withExtendedLifetime(owner) { try body(bytes) }
    }
}

/// Memory whose resident pages can be given back without losing the data (a file mapping).
public protocol ResidentPageReleasing: AnyObject {
    /// Drops the resident pages that lie wholly inside `range` (a part of this object's memory).
    func releaseResidentPages(_ range: UnsafeRawBufferPointer)
    /// Makes the pages covering `range` resident and mapped (a part of this object's memory);
    /// a hint: it may do nothing.
    func populateResidentPages(_ range: UnsafeRawBufferPointer)
}

/// An owned, 64-byte aligned, heap buffer of bytes.
public final class ByteBuffer: @unchecked Sendable {
    public let mutableBytes: UnsafeMutableRawBufferPointer

    public init(count: Int) {
        let pointer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 64)
        mutableBytes = UnsafeMutableRawBufferPointer(start: pointer, count: count)
    }

    deinit { mutableBytes.baseAddress?.deallocate() }
}

/// How a tensor is stored: plain bytes in `TensorInfo.dtype`, or quantized codes (QPK).
public enum TensorStorage: Sendable {
    case dense(TensorBytes)
    case quantized(QuantizedTensor)
}
