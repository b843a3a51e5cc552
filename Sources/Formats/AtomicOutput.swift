#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import QPKCore

/// A file written under a temporary name beside its destination and renamed into place by
/// ``commit()``, so a failed or interrupted run never leaves a half-written file.
///
/// Writes are buffered; ``write(at:_:)`` writes at an absolute offset (for headers patched last
/// or data written out of order). Dropping an uncommitted output deletes the temporary file.
public final class AtomicOutput {
    public let destination: URL
    public let temporaryURL: URL
    private var fd: Int32
    private var buffer: [UInt8] = []
    private let bufferLimit = 1 << 20
    private var committed = false
    /// The number of bytes appended so far (the offset of the next ``append(_:)``).
    public private(set) var position: Int = 0

    /// Creates the temporary file.
    /// - Parameter overwrite: replace an existing destination (`--force`); otherwise an existing
    ///   destination is an error before anything is written.
    public init(destination: URL, overwrite: Bool) throws {
        self.destination = destination
        let path = destination.path
        if !overwrite, FileManager.default.fileExists(atPath: path) {
            throw FileAccessError.alreadyExists(path)
        }
        let directory = destination.deletingLastPathComponent()
        let name = ".\(destination.lastPathComponent).qpk-tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        temporaryURL = directory.appendingPathComponent(name)
        fd = open(temporaryURL.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileAccessError.cannotWrite(path, String(cString: strerror(errno))) }
    }

    /// Appends `bytes` at ``position``.
    public func append(_ bytes: UnsafeRawBufferPointer) throws {
        if buffer.count + bytes.count > bufferLimit {
            try flush()
            if bytes.count >= bufferLimit {
                try writeFully(bytes, at: position)
                position += bytes.count
                return
            }
        }
        buffer.append(contentsOf: bytes)
        position += bytes.count
    }

    /// Appends `bytes` at ``position``.
    public func append(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try append($0) }
    }

    /// Appends zero bytes until ``position`` is a multiple of `alignment`.
    public func pad(toMultipleOf alignment: Int) throws {
        let remainder = position % alignment
        if remainder != 0 { try append([UInt8](repeating: 0, count: alignment - remainder)) }
    }

    /// Writes `bytes` at absolute `offset` without moving ``position``.
    public func write(at offset: Int, _ bytes: UnsafeRawBufferPointer) throws {
        try flush()
        try writeFully(bytes, at: offset)
    }

    /// Writes the buffered bytes, which end at ``position``.
    private func flush() throws {
        guard !buffer.isEmpty else { return }
        let start = position - buffer.count
        try buffer.withUnsafeBytes { try writeFully($0, at: start) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeFully(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws {
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw FileAccessError.cannotWrite(destination.path, String(cString: strerror(errno)))
            }
            done += n
        }
    }

    /// Flushes, syncs and renames the temporary file to the destination.
    public func commit() throws {
        try flush()
        guard fsync(fd) == 0 || errno == EINVAL else {
            throw FileAccessError.cannotWrite(destination.path, String(cString: strerror(errno)))
        }
        close(fd)
        fd = -1
        guard rename(temporaryURL.path, destination.path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporaryURL.path)
            throw FileAccessError.cannotWrite(destination.path, reason)
        }
        committed = true
    }

    deinit {
        if fd >= 0 { close(fd) }
        if !committed { unlink(temporaryURL.path) }
    }
}
