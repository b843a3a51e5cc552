import CHDF5
import Foundation
import QPKCore

/// The one door to libhdf5.
///
/// libhdf5 builds differ: some are not thread-safe at all, and the thread-safe ones (Debian 12's
/// `libhdf5-serial` is one) still keep the error-printing setting per thread. So every call into the
/// library happens inside ``locked(_:)``, which holds one process-wide recursive lock and turns off
/// automatic error-stack printing for the calling thread before running the body. No HDF5 stack dump
/// ever reaches the terminal: failed calls become ``HDF5Error`` values through ``HDF5Call`` instead.
enum HDF5Library {
    private static let lock = NSRecursiveLock()

    /// Runs `body` while holding the library lock, with error printing silenced on this thread.
    static func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        _ = qpk_silence_errors()
        return try body()
    }

    static var defaultProperties: hid_t { qpk_H5P_DEFAULT() }

    /// The innermost message of the current error stack (the most specific one, e.g.
    /// "truncated file: eof = 800, …"), then clears the stack. Call with the lock held.
    static func takeErrorDetail() -> String {
        var message = ""
        let status = withUnsafeMutablePointer(to: &message) { pointer in
            H5Ewalk2(qpk_H5E_DEFAULT(), H5E_WALK_UPWARD, { index, error, data in
                guard index == 0, let error, let data, let description = error.pointee.desc else { return 0 }
                data.assumingMemoryBound(to: String.self).pointee = String(cString: description)
                return 0
            }, pointer)
        }
        _ = status
        H5Eclear2(qpk_H5E_DEFAULT())
        return message
    }
}

/// Turns libhdf5's negative return values into ``HDF5Error/operationFailed(file:object:operation:detail:hint:)``.
struct HDF5Call {
    /// The file the calls act on, for messages.
    let file: String
    /// What to tell the user to do when a call fails.
    let hint: String

    static let readHint = "the file may be truncated or corrupt; run `qpk validate` on it"
    static let writeHint = "check free disk space and write permission"

    func failure(_ operation: String, _ object: String) -> HDF5Error {
        .operationFailed(
            file: file, object: object, operation: operation,
            detail: HDF5Library.takeErrorDetail(), hint: hint)
    }

    /// Checks an identifier-returning call.
    @discardableResult
    func id(_ value: hid_t, _ operation: String, _ object: String) throws -> hid_t {
        guard value >= 0 else { throw failure(operation, object) }
        return value
    }

    /// Checks a status-returning call.
    func ok(_ value: herr_t, _ operation: String, _ object: String) throws {
        guard value >= 0 else { throw failure(operation, object) }
    }

    /// Checks a tri-state (true/false/error) call.
    func flag(_ value: htri_t, _ operation: String, _ object: String) throws -> Bool {
        guard value >= 0 else { throw failure(operation, object) }
        return value > 0
    }

    /// Checks a call returning a count or size.
    func count<I: BinaryInteger>(_ value: I, _ operation: String, _ object: String) throws -> Int {
        guard value >= 0, let result = Int(exactly: value) else { throw failure(operation, object) }
        return result
    }
}

/// An owned HDF5 identifier, closed by the matching `H5?close` when the handle goes away.
///
/// Handles are created and dropped with the library lock held (all HDF5 work happens inside
/// ``HDF5Library/locked(_:)``); the recursive lock makes the close in `deinit` safe either way.
final class HDF5Handle {
    let id: hid_t

    init(_ id: hid_t) { self.id = id }

    deinit {
        HDF5Library.locked {
            switch H5Iget_type(id) {
            case H5I_FILE: _ = H5Fclose(id)
            case H5I_GROUP: _ = H5Gclose(id)
            case H5I_DATASET: _ = H5Dclose(id)
            case H5I_DATATYPE: _ = H5Tclose(id)
            case H5I_DATASPACE: _ = H5Sclose(id)
            case H5I_ATTR: _ = H5Aclose(id)
            case H5I_GENPROP_LST: _ = H5Pclose(id)
            default: break
            }
            H5Eclear2(qpk_H5E_DEFAULT())
        }
    }
}

extension HDF5Call {
    /// Checks an identifier-returning call and wraps it in an owning handle.
    func handle(_ value: hid_t, _ operation: String, _ object: String) throws -> HDF5Handle {
        HDF5Handle(try id(value, operation, object))
    }
}
