import Dispatch
import Foundation

/// The one way qpk spreads work over cores.
///
/// Two shapes of work exist, and each has one entry point:
/// - **Whole tensors** (``map(_:workers:_:)``): a list of independent jobs, each holding one tensor
///   in memory. At most `workers` jobs run at once and each worker takes the next job only when its
///   last one is done, so memory is bounded by `workers` tensors, never by the model. The first
///   error stops the remaining jobs and is rethrown.
/// - **Ranges inside one tensor** (``mapChunks(count:chunk:_:)`` and
///   ``forEachChunk(rows:work:_:)``): slices of an index range on every core, with results in
///   slice order so that merges are deterministic whatever the scheduling.
public enum Parallel {
    /// The number of threads qpk's work may use at once: the cores the process may use, or fewer
    /// when ``limitThreads(to:)`` said so (`--threads N`).
    public static var coreCount: Int {
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        return threadLimit.value.map { min($0, cores) } ?? cores
    }

    /// Caps every parallel loop of the process at `count` threads (≥ 1), e.g. from `--threads`;
    /// `nil` lifts the cap. Meant to be set once, before the work starts.
    public static func limitThreads(to count: Int?) {
        threadLimit.value = count.map { max(1, $0) }
    }

    private static let threadLimit = LockedValue<Int?>(nil)

    /// Runs `body` for each index of `order`, at most `workers` at a time, and returns the results
    /// indexed like `0..<count` (not in `order`).
    ///
    /// - Parameters:
    ///   - order: the jobs, as indices in `0..<count`, in the order they are started (callers put
    ///     the largest first so that they overlap).
    ///   - count: the size of the result array; every index in `0..<count` must appear in `order`.
    ///   - workers: the most jobs in flight at once (≥ 1).
    /// - Throws: the first error a job threw; jobs not yet started then never start.
    public static func map<T>(
        _ order: [Int], count: Int, workers: Int, _ body: @Sendable (Int) throws -> T
    ) throws -> [T] {
        let results = ResultSlots<T>(count: count)
        let cursor = JobCursor(limit: order.count)
        let threads = max(1, min(workers, order.count, coreCount))
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            while let position = cursor.next() {
                let index = order[position]
                do {
                    results.store(.success(try body(index)), at: index)
                } catch {
                    cursor.fail(error)
                }
            }
        }
        if let error = cursor.error { throw error }
        return try results.collect()
    }

    /// Runs `body` for every index of `0..<count`, at most `workers` at a time, in index order.
    public static func map<T>(
        count: Int, workers: Int, _ body: @Sendable (Int) throws -> T
    ) throws -> [T] {
        try map(Array(0..<count), count: count, workers: workers, body)
    }

    /// Elements per chunk for ``mapChunks(count:chunk:_:)``: 1 Mi floats (4 MiB), large enough to
    /// amortise scheduling, small enough that a decoded chunk stays in bounded scratch memory.
    public static let defaultChunk = 1 << 20

    /// Splits `0..<count` into chunks of `chunk` indices and runs `body` on each, on every core
    /// (``coreCount`` threads taking chunks in order).
    /// - Returns: the results in chunk order.
    public static func mapChunks<T>(
        count: Int, chunk: Int = defaultChunk, _ body: @Sendable (Range<Int>) throws -> T
    ) throws -> [T] {
        let chunk = max(chunk, 1)
        let chunks = count == 0 ? 0 : (count - 1) / chunk + 1
        if chunks <= 1 { return chunks == 0 ? [] : [try body(0..<count)] }
        return try map(count: chunks, workers: coreCount) { index in
            let start = index * chunk
            return try body(start..<min(start + chunk, count))
        }
    }

    /// Runs `body` over disjoint slices of `0..<rows` on every core, or on the calling thread when
    /// the whole job is small (under 2^17 element operations) or only one core is available.
    ///
    /// - Parameter work: the cost of one row, in element operations.
    public static func forEachChunk(rows: Int, work: Int, _ body: (Range<Int>) -> Void) {
        let total = rows * max(work, 1)
        let cores = coreCount
        guard cores > 1, total >= 1 << 17, rows > 1 else {
            body(0..<rows)
            return
        }
        let chunks = min(rows, cores * 4)
        let per = (rows + chunks - 1) / chunks
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            // `cores` threads take the slices in order (never more threads than --threads allows).
            _ = try? map(count: chunks, workers: cores) { i in
                let lo = i * per
                let hi = min(rows, lo + per)
                if lo < hi { box.value(lo..<hi) }
            }
        }
    }
}

/// A value read and written under a lock.
final class LockedValue<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value

    init(_ value: Value) { stored = value }

    var value: Value {
        get { lock.lock(); defer { lock.unlock() }; return stored }
        set { lock.lock(); stored = newValue; lock.unlock() }
    }
}

/// Hands out job positions to workers and remembers the first failure.
private final class JobCursor: @unchecked Sendable {
    private let lock = NSLock()
    private let limit: Int
    private var position = 0
    private(set) var error: (any Error)?

    init(limit: Int) { self.limit = limit }

    func next() -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard error == nil, position < limit else { return nil }
        position += 1
        return position - 1
    }

    func fail(_ failure: any Error) {
        lock.lock()
        if error == nil { error = failure }
        lock.unlock()
    }
}

/// Write-once result slots filled concurrently, each index by exactly one worker, read after the
/// join.
private final class ResultSlots<T>: @unchecked Sendable {
    private let slots: UnsafeMutableBufferPointer<Result<T, any Error>?>
    private let count: Int

    init(count: Int) {
        self.count = count
        slots = .allocate(capacity: max(count, 1))
        slots.initialize(repeating: nil)
    }

    deinit {
        slots.deinitialize()
        slots.deallocate()
    }

    func store(_ value: Result<T, any Error>, at index: Int) { slots[index] = value }

    /// The results in order; rethrows the first failure.
    /// - Precondition: every slot was stored.
    func collect() throws -> [T] {
        try slots.prefix(count).map { try $0!.get() }
    }
}

/// A value handed across threads whose safety the caller guarantees (disjoint writes).
public struct UncheckedSendable<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}
