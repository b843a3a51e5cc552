#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import QPKCore

/// A file that appears at its destination only complete: a failed, interrupted or killed run
/// never leaves a half-written file, and never touches an existing destination until ``commit()``.
///
/// On Linux the data goes to an unnamed file (`open(folder, O_TMPFILE)`), which the kernel
/// deletes with the process whatever ends it (even `kill -9`); ``commit()`` links it in with
/// `linkat(2)`, which fails rather than replace a file created meanwhile, so without `overwrite`
/// an existing destination is never clobbered. With `overwrite` the file is linked under a
/// temporary name and renamed over the destination. Where the file system has no `O_TMPFILE`,
/// the data goes to a named temporary file (``TemporaryFiles``) that SIGINT/SIGTERM remove and
/// the next run clears.
///
/// Writes are buffered; ``write(at:_:)`` writes at an absolute offset (for headers patched last
/// or data written out of order). Dropping an uncommitted output deletes its data.
public final class AtomicOutput {
    public let destination: URL
    /// The named temporary file, or `nil` while the data is in an unnamed (`O_TMPFILE`) file.
    public private(set) var temporaryURL: URL?
    private var fd: Int32
    private let overwrite: Bool
    private var buffer: [UInt8] = []
    private let bufferLimit = 1 << 20
    private var committed = false
    /// The number of bytes appended so far (the offset of the next ``append(_:)``).
    public private(set) var position: Int = 0

    /// Creates the temporary file.
    /// - Parameter overwrite: replace an existing destination (`--force`); otherwise an existing
    ///   destination is an error before anything is written.
    /// - Throws: ``FileAccessError/alreadyExists(_:)``, or ``FileAccessError/cannotWrite(_:_:)``
    ///   when the destination's folder is missing or not writable.
    public init(destination: URL, overwrite: Bool) throws {
        self.destination = destination
        self.overwrite = overwrite
        let path = destination.path
        try OutputLocation.prepare(destination, overwrite: overwrite)
        let directory = destination.deletingLastPathComponent()
        #if os(Linux)
        fd = open(directory.path, Self.oTmpFile | O_WRONLY | O_CLOEXEC, 0o644)
        if fd >= 0 {
            temporaryURL = nil
            return
        }
        #else
        fd = -1
        #endif
        let named = TemporaryFiles.temporaryURL(for: destination)
        fd = open(named.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileAccessError.cannotWrite(path, String(cString: strerror(errno)), errno: errno) }
        temporaryURL = named
        TemporaryFiles.register(named)
    }

    #if os(Linux)
    /// `O_TMPFILE` (`__O_TMPFILE | O_DIRECTORY`), which Swift does not import as a constant.
    static let oTmpFile: Int32 = 0o20000000 | O_DIRECTORY
    static let atFDCWD: Int32 = -100
    static let atSymlinkFollow: Int32 = 0x400
    #endif

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
                throw FileAccessError.cannotWrite(destination.path, String(cString: strerror(errno)), errno: errno)
            }
            done += n
        }
        startWriteback(upTo: offset + bytes.count)
    }

    /// The end of the bytes already handed to the kernel's writeback.
    private var writebackStart = 0
    private let writebackStep = 32 << 20

    /// Starts the disk writes of every full 32 MiB written so far without waiting for them
    /// (`posix_fadvise(POSIX_FADV_DONTNEED)` starts writeback of dirty pages on Linux), so the
    /// `fsync` of ``commit()`` finds little left to do instead of stalling at the end of a run.
    private func startWriteback(upTo end: Int) {
        #if os(Linux)
        guard end - writebackStart >= writebackStep else { return }
        _ = posix_fadvise(fd, off_t(writebackStart), off_t(end - writebackStart), POSIX_FADV_DONTNEED)
        writebackStart = end
        #endif
    }

    /// Flushes and syncs the data and moves it to the destination.
    /// - Throws: ``FileAccessError/alreadyExists(_:)`` when, without `overwrite`, a file appeared
    ///   at the destination meanwhile; ``FileAccessError/cannotWrite(_:_:)``.
    public func commit() throws {
        try flush()
        guard fsync(fd) == 0 || errno == EINVAL else {
            throw FileAccessError.cannotWrite(destination.path, String(cString: strerror(errno)), errno: errno)
        }
        if let temporaryURL {
            close(fd)
            fd = -1
            try moveIntoPlace(temporaryURL)
        } else {
            try linkIntoPlace()
            close(fd)
            fd = -1
        }
        committed = true
    }

    /// Renames the named temporary file to the destination (deleting it if that fails).
    private func moveIntoPlace(_ temporary: URL) throws {
        defer { TemporaryFiles.unregister(temporary) }
        if !overwrite, FileManager.default.fileExists(atPath: destination.path) {
            unlink(temporary.path)
            throw FileAccessError.alreadyExists(destination.path)
        }
        guard rename(temporary.path, destination.path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary.path)
            throw FileAccessError.cannotWrite(destination.path, reason)
        }
    }

    #if os(Linux)
    /// Gives the unnamed file a name: `linkat` through `/proc/self/fd` (no privilege needed).
    private func link(to url: URL) -> Int32 {
        linkat(Self.atFDCWD, "/proc/self/fd/\(fd)", Self.atFDCWD, url.path, Self.atSymlinkFollow)
    }
    #endif

    /// Links the unnamed file in: straight at the destination (atomic, never clobbering), or,
    /// to replace an existing file, under a temporary name renamed over it.
    private func linkIntoPlace() throws {
        #if os(Linux)
        if link(to: destination) == 0 { return }
        let reason = errno
        guard reason == EEXIST else {
            throw FileAccessError.cannotWrite(destination.path, String(cString: strerror(reason)), errno: reason)
        }
        guard overwrite else { throw FileAccessError.alreadyExists(destination.path) }
        let named = TemporaryFiles.temporaryURL(for: destination)
        TemporaryFiles.register(named)
        guard link(to: named) == 0 else {
            TemporaryFiles.unregister(named)
            throw FileAccessError.cannotWrite(destination.path, String(cString: strerror(errno)), errno: errno)
        }
        try moveIntoPlace(named)
        #endif
    }

    deinit {
        if fd >= 0 { close(fd) }
        if !committed, let temporaryURL {
            unlink(temporaryURL.path)
            TemporaryFiles.unregister(temporaryURL)
        }
    }
}

/// Checks on the place an output goes, made before any byte is written.
public enum OutputLocation {
    /// Refuses an output whose folder is missing or is not a folder, or that exists without
    /// `overwrite`; clears temporary files that killed qpk runs left in the folder.
    /// - Throws: ``FileAccessError/alreadyExists(_:)`` or ``FileAccessError/cannotWrite(_:_:)``.
    public static func prepare(_ destination: URL, overwrite: Bool) throws {
        let path = destination.path
        let folder = destination.deletingLastPathComponent()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory) else {
            throw FileAccessError.cannotWrite(path, "the folder \(folder.path) does not exist; create it first")
        }
        guard isDirectory.boolValue else {
            throw FileAccessError.cannotWrite(path, "\(folder.path) is not a folder")
        }
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            if !overwrite { throw FileAccessError.alreadyExists(path) }
            if isDirectory.boolValue {
                throw FileAccessError.cannotWrite(path, "it is a folder; remove it or choose a file name")
            }
        }
        TemporaryFiles.clearStale(in: folder)
    }
}
