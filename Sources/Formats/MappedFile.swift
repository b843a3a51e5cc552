#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import QPKCore

/// A read-only memory mapping of a whole file, unmapped when the last reference goes away.
///
/// Readers hand out ``TensorBytes`` views into the mapping, which keep it alive, so tensor data is
/// paged in lazily and never copied.
public final class MappedFile: ResidentPageReleasing, @unchecked Sendable {
    /// The file that is mapped.
    public let url: URL
    /// The whole file's bytes (empty for an empty file).
    public let bytes: UnsafeRawBufferPointer

    /// Maps `url` read-only.
    ///
    /// The file is opened with `O_NONBLOCK`, so a FIFO, socket or device never blocks the open:
    /// anything but a regular file is refused at once (``FileAccessError/notRegularFile(_:_:)``).
    /// - Throws: ``FileAccessError`` when the file cannot be opened, is a directory or another
    ///   non-regular file, or cannot be mapped.
    public init(url: URL) throws {
        self.url = url
        let fd = open(url.path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw FileAccessError.cannotOpen(url.path, String(cString: strerror(errno)), errno: errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileAccessError.cannotOpen(url.path, String(cString: strerror(errno)), errno: errno) }
        guard (info.st_mode & S_IFMT) != S_IFDIR else { throw FileAccessError.isDirectory(url.path) }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw FileAccessError.notRegularFile(url.path, FileAccessError.kindName(mode: info.st_mode))
        }
        let size = Int(info.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), address != MAP_FAILED else {
            throw FileAccessError.cannotMap(url.path, String(cString: strerror(errno)), errno: errno)
        }
        bytes = UnsafeRawBufferPointer(start: address, count: size)
    }

    /// Tells the kernel the mapping will be read front to back (it then reads ahead more).
    public func adviseSequential() {
        guard let base = bytes.baseAddress else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base), bytes.count, MADV_SEQUENTIAL)
    }

    /// Drops the pages wholly inside `range` from this process (`madvise(MADV_DONTNEED)`): the
    /// mapping is read-only and private, so nothing is lost; the page cache keeps the data and a
    /// later read faults it back in. Pages shared with neighbouring bytes are kept.
    /// Maps the pages covering `range` in one call (`madvise(MADV_POPULATE_READ)`, Linux ≥ 5.14),
    /// reading them from the file if they are not in the page cache; elsewhere, or on an older
    /// kernel, the pages fault in as they are read.
    public func populateResidentPages(_ range: UnsafeRawBufferPointer) {
        #if os(Linux)
        guard let base = bytes.baseAddress, let start = range.baseAddress, range.count > 0 else { return }
        let page = Self.pageSize
        let mapped = Int(bitPattern: base)..<(Int(bitPattern: base) + bytes.count)
        let lower = max(Int(bitPattern: start) / page * page, mapped.lowerBound)
        let upper = min((Int(bitPattern: start) + range.count + page - 1) / page * page, mapped.upperBound)
        guard upper > lower, mapped.contains(lower) else { return }
        _ = madvise(UnsafeMutableRawPointer(bitPattern: lower), upper - lower, Self.populateRead)
        #endif
    }

    /// `MADV_POPULATE_READ` (linux/mman.h), which Glibc's headers here may not name.
    static let populateRead: Int32 = 22

    public func releaseResidentPages(_ range: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, let start = range.baseAddress, range.count > 0 else { return }
        let page = Self.pageSize
        let lower = (Int(bitPattern: start) + page - 1) / page * page
        let upper = (Int(bitPattern: start) + range.count) / page * page
        let mapped = Int(bitPattern: base)..<(Int(bitPattern: base) + bytes.count)
        guard upper > lower, mapped.contains(lower), upper <= mapped.upperBound else { return }
        _ = madvise(UnsafeMutableRawPointer(bitPattern: lower), upper - lower, MADV_DONTNEED)
    }

    private static let pageSize = max(1, Int(sysconf(Int32(_SC_PAGESIZE))))

    /// A view of `range`, which keeps this mapping alive.
    /// - Precondition: `range` lies within the file.
    public func slice(_ range: Range<Int>) -> TensorBytes {
        precondition(range.lowerBound >= 0 && range.upperBound <= bytes.count)
        return TensorBytes(
            UnsafeRawBufferPointer(rebasing: bytes[range]), owner: self)
    }

    deinit {
        if let base = bytes.baseAddress {
            munmap(UnsafeMutableRawPointer(mutating: base), bytes.count)
        }
    }
}

/// Problems opening, mapping or writing files, independent of any format.
public enum FileAccessError: CheckpointDiagnosable, Sendable, Equatable {
    /// The file cannot be opened (the system's reason and error number when it gave one).
    case cannotOpen(String, String, errno: Int32? = nil)
    case isDirectory(String)
    case cannotMap(String, String, errno: Int32? = nil)
    case cannotWrite(String, String, errno: Int32? = nil)
    case alreadyExists(String)
    /// The path is a FIFO, socket or device: reading it could block forever or never end.
    case notRegularFile(String, String)

    /// The problem as data: rules `cannot_open`, `is_directory`, `cannot_map`, `cannot_write`,
    /// `already_exists` and `not_regular_file`, with the system's error number where there is one.
    public var diagnostic: CheckpointDiagnostic {
        switch self {
        case let .cannotOpen(path, reason, code):
            CheckpointDiagnostic(file: path, rule: "cannot_open", detail: reason, errno: code)
        case let .isDirectory(path):
            CheckpointDiagnostic(file: path, rule: "is_directory", detail: "is a directory, not a file")
        case let .cannotMap(path, reason, code):
            CheckpointDiagnostic(file: path, rule: "cannot_map", detail: reason, errno: code)
        case let .cannotWrite(path, reason, code):
            CheckpointDiagnostic(file: path, rule: "cannot_write", detail: reason, errno: code)
        case let .alreadyExists(path):
            CheckpointDiagnostic(file: path, rule: "already_exists", detail: "the output already exists", hint: "use --force to replace it")
        case let .notRegularFile(path, kind):
            CheckpointDiagnostic(
                file: path, rule: "not_regular_file", detail: "is a \(kind), not a regular file",
                hint: "qpk reads checkpoints from regular files only (copy it to a file first)")
        }
    }

    /// What a non-regular file is, in words, from its `st_mode`.
    static func kindName(mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFIFO: "FIFO (named pipe)"
        case S_IFSOCK: "socket"
        case S_IFCHR: "character device"
        case S_IFBLK: "block device"
        case S_IFDIR: "directory"
        default: "special file"
        }
    }

    /// Refuses `path` at once unless it is a regular file or a directory (symbolic links are
    /// followed). A missing path passes: opening it reports that.
    /// - Throws: ``notRegularFile(_:_:)`` for a FIFO, socket or device.
    public static func requireRegularFileOrDirectory(_ path: String) throws {
        var info = stat()
        guard stat(path, &info) == 0 else { return }
        let type = info.st_mode & S_IFMT
        guard type == S_IFREG || type == S_IFDIR else { throw notRegularFile(path, kindName(mode: info.st_mode)) }
    }
}
