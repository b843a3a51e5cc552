import Formats
import Quantize
import QPKCore

/// A tensor's values as `Float`, readable in chunks from several threads at once.
///
/// Dense `F32` bytes that are 4-byte aligned are read in place (no copy). Other dense dtypes are
/// decoded chunk by chunk with ``FloatCodec`` into short-lived scratch buffers, so memory stays at
/// one chunk per core. Quantized tensors are dequantized once, into a buffer the size of the tensor.
public struct FloatValues: @unchecked Sendable {
    enum Backing {
        case floats(UnsafeBufferPointer<Float>)
        case encoded(UnsafeRawBufferPointer, DType)
    }

    let backing: Backing
    /// Keeps the memory behind `backing` alive (a `TensorBytes`, or an owned buffer).
    private let keepAlive: Any?
    /// The number of elements.
    public let count: Int

    /// The values of `storage`, which describes `info`.
    /// - Throws: ``Dequantizer/Failure`` when the dtype has no float view or the data is inconsistent.
    public init(storage: TensorStorage, info: TensorInfo) throws {
        count = info.elementCount
        switch storage {
        case let .dense(bytes):
            guard info.dtype.isConvertibleToFloat else { throw Dequantizer.Failure.notConvertible(info.name, info.dtype) }
            guard bytes.count >= info.byteCount else {
                throw Dequantizer.Failure.inconsistent(info.name, "\(bytes.count) bytes stored for \(info.byteCount) expected")
            }
            let raw = UnsafeRawBufferPointer(rebasing: bytes.bytes[0..<info.byteCount])
            if info.dtype == .f32, let base = raw.baseAddress, Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 {
                backing = .floats(UnsafeBufferPointer(start: base.assumingMemoryBound(to: Float.self), count: count))
            } else {
                backing = .encoded(raw, info.dtype)
            }
            keepAlive = bytes
        case .quantized:
            let buffer = ByteBuffer(count: count * MemoryLayout<Float>.stride)
            let floats = buffer.mutableBytes.bindMemory(to: Float.self)
            try Dequantizer.decode(storage, info: info, into: floats)
            backing = .floats(UnsafeBufferPointer(floats))
            keepAlive = buffer
        }
    }

    /// A copy of `values`.
    public init(_ values: [Float]) {
        let buffer = ByteBuffer(count: values.count * MemoryLayout<Float>.stride)
        let floats = buffer.mutableBytes.bindMemory(to: Float.self)
        _ = floats.initialize(from: values)
        backing = .floats(UnsafeBufferPointer(floats))
        keepAlive = buffer
        count = values.count
    }

    /// Values of `dtype` encoded in `bytes` (which must stay valid while this value is used);
    /// the caller keeps them alive through `owner`.
    public init(encoded bytes: TensorBytes, dtype: DType, count: Int) throws {
        guard dtype.isConvertibleToFloat else { throw Dequantizer.Failure.notConvertible("", dtype) }
        guard let needed = dtype.byteCount(elementCount: count), bytes.count >= needed else {
            throw Dequantizer.Failure.inconsistent("", "\(bytes.count) bytes for \(count) elements of \(dtype.rawValue)")
        }
        backing = .encoded(UnsafeRawBufferPointer(rebasing: bytes.bytes[0..<needed]), dtype)
        keepAlive = bytes
        self.count = count
    }

    /// Tells a memory-mapped source that these values will not be read again soon: its resident
    /// pages leave the process (they stay in the page cache). Owned buffers ignore it.
    public func releaseResidentPages() {
        (keepAlive as? TensorBytes)?.releaseResidentPages()
    }

    /// Runs `body` on the elements in `range` as `Float`.
    func withChunk<R>(_ range: Range<Int>, _ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        switch backing {
        case let .floats(all):
            return try withExtendedLifetime(keepAlive) { try body(UnsafeBufferPointer(rebasing: all[range])) }
        case let .encoded(raw, dtype):
            let scratch = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(range.count, 1))
            defer { scratch.deallocate() }
            let width = dtype.bitWidth / 8
            withExtendedLifetime(keepAlive) {
                let source = UnsafeRawBufferPointer(rebasing: raw[(range.lowerBound * width)..<(range.upperBound * width)])
                FloatCodec.decode(source, dtype: dtype, count: range.count, into: scratch)
            }
            return try body(UnsafeBufferPointer(rebasing: scratch[0..<range.count]))
        }
    }
}
