import Foundation
import Testing
@testable import Convert
import QPKCore

@Suite("BackgroundWriter: writes off the worker threads, in order, bounded")
struct BackgroundWriterTests {
    final class Log: @unchecked Sendable {
        private let lock = NSLock()
        private var items: [Int] = []
        func append(_ x: Int) { lock.lock(); items.append(x); lock.unlock() }
        var all: [Int] { lock.lock(); defer { lock.unlock() }; return items }
    }

    struct Broken: Error {}

    @Test("writes run in the order they were queued, and drain waits for all of them")
    func order() throws {
        let writer = BackgroundWriter(capacity: 2)
        let log = Log()
        for i in 0..<50 {
            try writer.enqueue {
                if i % 7 == 0 { Thread.sleep(forTimeInterval: 0.001) }
                log.append(i)
            }
        }
        try writer.drain()
        #expect(log.all == Array(0..<50))
    }

    @Test("the first failed write skips the rest and is rethrown by enqueue and drain")
    func failure() throws {
        let writer = BackgroundWriter(capacity: 1)
        let log = Log()
        try writer.enqueue { log.append(0) }
        try writer.enqueue { throw Broken() }
        try? writer.enqueue { log.append(2) }  // queued, or refused once the failure is known
        #expect(throws: Broken.self) { try writer.drain() }
        #expect(log.all == [0])
        #expect(throws: Broken.self) { try writer.enqueue { log.append(3) } }
    }

    @Test("cancel skips the writes not yet started")
    func cancel() throws {
        let writer = BackgroundWriter(capacity: 4)
        let log = Log()
        let gate = DispatchSemaphore(value: 0), started = DispatchSemaphore(value: 0)
        try writer.enqueue { started.signal(); gate.wait(); log.append(0) }
        try writer.enqueue { log.append(1) }
        started.wait()  // the first write is running: it finishes, the second never starts
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.05) { gate.signal() }
        writer.cancel()
        #expect(log.all == [0])
        #expect(throws: CancellationError.self) { try writer.drain() }
    }
}
