import Dispatch

/// Splits `0..<count` into chunks and runs `body` on each, on every core, returning the results in
/// chunk order (so merges are deterministic whatever the scheduling).
enum ParallelChunks {
    /// Elements per chunk: 1 Mi floats (4 MiB), large enough to amortise scheduling, small enough
    /// that a decoded chunk stays in bounded scratch memory.
    static let defaultChunk = 1 << 20

    static func map<T>(
        count: Int, chunk: Int = defaultChunk, _ body: @Sendable (Range<Int>) throws -> T
    ) throws -> [T] {
        let chunk = max(chunk, 1)
        let chunks = count == 0 ? 0 : (count - 1) / chunk + 1
        if chunks <= 1 { return chunks == 0 ? [] : [try body(0..<count)] }
        let results = ResultSlots<T>(count: chunks)
        DispatchQueue.concurrentPerform(iterations: chunks) { index in
            let start = index * chunk
            let range = start..<min(start + chunk, count)
            do { results.store(.success(try body(range)), at: index) } catch { results.store(.failure(error), at: index) }
        }
        return try results.collect()
    }

    /// Runs `body` for every index in `0..<count` on every core, results in index order.
    static func map<T>(indices count: Int, _ body: @Sendable (Int) throws -> T) throws -> [T] {
        try map(count: count, chunk: 1) { try body($0.lowerBound) }
    }
}

/// Write-once slots filled concurrently (each index by exactly one worker), read after the join.
final class ResultSlots<T>: @unchecked Sendable {
    private let slots: UnsafeMutableBufferPointer<Result<T, any Error>?>

    init(count: Int) {
        slots = .allocate(capacity: count)
        slots.initialize(repeating: nil)
    }

    deinit {
        slots.deinitialize()
        slots.deallocate()
    }

    func store(_ value: Result<T, any Error>, at index: Int) { slots[index] = value }

    /// The results in order; rethrows the first failure.
    func collect() throws -> [T] {
        try slots.map { try $0!.get() }
    }
}
