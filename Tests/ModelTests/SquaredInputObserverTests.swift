import Testing
@testable import Model

@Suite("SquaredInputObserver: Σ x² per column and rows, padding skipped, shared inputs once")
struct SquaredInputObserverTests {
    @Test("two batches add up; masked rows do not count; every consumer of an input sees it")
    func sums() throws {
        let observer = SquaredInputObserver()
        let first = Matrix(rows: 3, columns: 2, values: [1, 2, 3, 4, 100, 100])
        observer.observe(LinearInput(layers: ["q", "k", "v"], block: 0, values: first, rowMask: [1, 1, 0]))
        observer.observe(LinearInput(layers: ["q", "k", "v"], block: 0, values: Matrix(rows: 1, columns: 2, values: [2, 0]), rowMask: [1]))
        observer.observe(LinearInput(layers: ["down"], block: 0, values: Matrix(rows: 1, columns: 1, values: [3]), rowMask: []))
        let q = try #require(observer.statistics(of: "q"))
        let expected: [Double] = [14, 20]  // 1 + 9 + 4, 4 + 16
        #expect(q.sumOfSquares == expected)
        #expect(q.rows == 3)
        #expect(observer.statistics(of: "v")?.sumOfSquares == q.sumOfSquares)
        #expect(observer.statistics(of: "down")?.rows == 1)
        #expect(observer.layers == ["down", "k", "q", "v"])
        #expect(observer.statistics(of: "missing") == nil)
    }
}
