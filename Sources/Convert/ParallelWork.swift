import Foundation

/// Runs independent jobs on a few threads, stopping at the first error.
///
/// Jobs are taken in the given order (callers put the largest first so they overlap), one at a
/// time per worker, so at most `workers` jobs are in flight and memory stays bounded by them.
enum ParallelWork {
    static func run(_ order: [Int], workers: Int, _ body: @Sendable (Int) throws -> Void) throws {
        let state = State()
        DispatchQueue.concurrentPerform(iterations: max(1, min(workers, order.count))) { _ in
            while let position = state.next(limit: order.count) {
                do {
                    try body(order[position])
                } catch {
                    state.fail(error)
                }
            }
        }
        if let error = state.error { throw error }
    }

    private final class State: @unchecked Sendable {
        private let lock = NSLock()
        private var cursor = 0
        private(set) var error: Error?

        func next(limit: Int) -> Int? {
            lock.lock()
            defer { lock.unlock() }
            guard error == nil, cursor < limit else { return nil }
            cursor += 1
            return cursor - 1
        }

        func fail(_ failure: Error) {
            lock.lock()
            if error == nil { error = failure }
            lock.unlock()
        }
    }
}

/// A fixed number of result slots filled from several threads.
final class ResultSlots<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [Value?]

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func store(_ value: Value, at index: Int) {
        lock.lock()
        slots[index] = value
        lock.unlock()
    }

    /// Every slot's value. - Precondition: every slot was stored.
    var values: [Value] { slots.map { $0! } }
}
