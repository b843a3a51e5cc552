import Dispatch
import Foundation
import QPKCore
import Formats

/// Runs the writes of a conversion on a thread of their own, in the order they are handed over,
/// so a worker that finishes a tensor goes straight on to the next one instead of waiting for
/// the disk (issue 12: "output writes that do not stall the quantizer").
///
/// At most `capacity` tensors wait to be written: ``enqueue(_:)`` blocks the caller beyond that,
/// which bounds the memory held by finished-but-unwritten outputs. After the first failed write
/// the remaining ones are skipped, and ``drain()`` rethrows that failure.
final class BackgroundWriter: @unchecked Sendable {
    private let queue = DispatchQueue(label: "qpk.convert.writer")
    private let slots: DispatchSemaphore
    private let lock = NSLock()
    private var failure: (any Error)?

    /// - Parameter capacity: writes that may wait at once (at least 1).
    init(capacity: Int) {
        slots = DispatchSemaphore(value: max(1, capacity))
    }

    /// The first write error so far, if any.
    var error: (any Error)? {
        lock.lock()
        defer { lock.unlock() }
        return failure
    }

    /// Queues `write` behind the writes already queued; blocks while `capacity` writes wait.
    /// - Throws: the first write error, once one happened (nothing more is queued then).
    func enqueue(_ write: @escaping @Sendable () throws -> Void) throws {
        if let error { throw error }
        slots.wait()
        queue.async { [self] in
            defer { slots.signal() }
            guard error == nil else { return }
            do {
                try write()
            } catch {
                lock.lock()
                if failure == nil { failure = error }
                lock.unlock()
            }
        }
    }

    /// Skips every write not yet started (a conversion that failed elsewhere), then waits for the
    /// one running.
    func cancel() {
        lock.lock()
        if failure == nil { failure = CancellationError() }
        lock.unlock()
        queue.sync {}
    }

    /// Waits until every queued write ran.
    /// - Throws: the first write error.
    func drain() throws {
        queue.sync {}
        if let error { throw error }
    }
}
