import Foundation
import QPKCore
import Formats
import Quantize

/// Hands values produced by several threads to one consumer in a fixed order (positions 0, 1, 2,
/// …), whatever order the threads finish in, so the output of a conversion is the same bytes for
/// any thread count and timing.
///
/// A value that arrives before its turn waits in a small buffer; when `capacity` values wait
/// already, the thread that brings another blocks until its turn (so memory stays bounded by
/// `capacity` plus the values in flight). The value whose turn it is is always in flight on a
/// thread that is not blocked (positions are taken in order), so the delivery cannot deadlock;
/// ``cancel(because:)`` releases every blocked thread when a job failed.
final class OrderedDelivery<Value>: @unchecked Sendable {
    private let condition = NSCondition()
    private var next = 0
    private var waiting: [Int: Value] = [:]
    private let capacity: Int
    private var cancelled = false
    private var failure: (any Error)?

    /// - Parameter capacity: how many early values may wait (at least 1).
    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// Delivers `value`, the one at `position`: when it is its turn, `deliver` runs for it and then
    /// for every waiting successor now due, in order, on this thread and under the delivery's lock.
    /// - Throws: what `deliver` throws (the delivery is then cancelled), or the error the delivery
    ///   was cancelled because of.
    func submit(_ value: Value, at position: Int, deliver: (Value) throws -> Void) throws {
        condition.lock()
        defer { condition.unlock() }
        while !cancelled, position != next, waiting.count >= capacity {
            condition.wait()
        }
        guard !cancelled else { throw failure ?? CancellationError() }
        guard position == next else {
            waiting[position] = value
            return
        }
        do {
            try deliver(value)
            next += 1
            while let due = waiting.removeValue(forKey: next) {
                try deliver(due)
                next += 1
            }
        } catch {
            cancelled = true
            if failure == nil { failure = error }
            condition.broadcast()
            throw error
        }
        condition.broadcast()
    }

    /// Stops the delivery because of `error`: blocked and later ``submit(_:at:deliver:)`` calls
    /// throw the first such error, so every thread reports the real cause.
    func cancel(because error: any Error) {
        condition.lock()
        cancelled = true
        if failure == nil { failure = error }
        waiting.removeAll()
        condition.broadcast()
        condition.unlock()
    }
}
