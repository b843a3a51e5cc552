import Foundation
import QPKCore
import Formats
import Quantize

/// Exact order statistics (the k-th smallest finite value) found in one extra pass, without
/// sorting or gathering values.
///
/// Every finite Float maps to a 32-bit key that orders like the value (``key(_:)``; −0 counts as
/// +0, the two being equal). The first statistics pass counts the keys' top 16 bits
/// (``coarseCounts(_:)``): 65 536 bins that follow the values' own scale, a bin covering 1/128 of
/// a binade. The bin that holds rank k follows from the running counts; one more pass counts the
/// low 16 bits of the keys in the wanted bins (a few at most), which pins the k-th key, and so the
/// value, exactly. All counts are integers, summed in any order, so the answer does not depend on
/// chunking or threads; memory is one 256 KiB table per wanted bin and per running chunk.
enum OrderStatistics {
    /// Bins of the coarse (top 16 bits) and fine (low 16 bits) key histograms.
    static let bins = 1 << 16

    /// The order key of a Float: unsigned order of keys = order of the values, with −0 as +0.
    @inline(__always) static func key(_ x: Float) -> UInt32 {
        let bits = (x + 0).bitPattern  // −0 + 0 = +0
        return bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000
    }

    /// The Float of an order key (the inverse of ``key(_:)``).
    @inline(__always) static func float(_ key: UInt32) -> Float {
        key & 0x8000_0000 != 0 ? Float(bitPattern: key & 0x7FFF_FFFF) : Float(bitPattern: ~key)
    }

    /// Adds the top-16-bit key counts of the finite values of `values` to `counts` (65 536 entries).
    static func addCoarseCounts(_ values: UnsafeBufferPointer<Float>, to counts: UnsafeMutableBufferPointer<UInt32>) {
        for x in values {
            let bits = x.bitPattern
            guard bits & 0x7F80_0000 != 0x7F80_0000 else { continue }  // NaN, ±Inf
            counts[Int(key(x) >> 16)] &+= 1
        }
    }

    /// The values of rank `ranks` (0-based, among the sorted finite values), given the coarse
    /// counts of all finite values (``addCoarseCounts(_:to:)`` over the whole tensor).
    static func select(ranks: [Int], in values: FloatValues, coarse: [Int]) throws -> [Int: Double] {
        var starts = [Int](repeating: 0, count: coarse.count)
        var running = 0
        for (i, c) in coarse.enumerated() {
            starts[i] = running
            running += c
        }
        func bin(ofRank r: Int) -> Int {
            // The last bin whose start is ≤ r and that holds something.
            var lo = 0, hi = coarse.count - 1
            while lo < hi {
                let mid = (lo + hi + 1) / 2
                if starts[mid] <= r { lo = mid } else { hi = mid - 1 }
            }
            while coarse[lo] == 0 && lo > 0 { lo -= 1 }
            return lo
        }
        var wanted: [Int: [Int]] = [:]
        for r in ranks where r >= 0 && r < running { wanted[bin(ofRank: r), default: []].append(r) }
        guard !wanted.isEmpty else { return [:] }
        let chosen = wanted.keys.sorted()
        var slots = [Int8](repeating: -1, count: bins)
        for (slot, b) in chosen.enumerated() { slots[b] = Int8(slot) }
        let table = slots
        // The chosen bins as Float intervals, so that the pass tests eight values at a time and
        // computes a key only for values inside one of them.
        let intervals = FloatIntervals(chosen.map { b -> ClosedRange<Float>? in
            float(UInt32(b) << 16)...float(UInt32(b) << 16 | 0xFFFF)
        })
        let fine = SharedCounts(count: chosen.count * bins)
        _ = try Parallel.mapChunks(count: values.count) { range -> Void in
            values.withChunk(range) { chunk in
                // The members' fine indices (a small share of the chunk), added under one lock.
                var members: [Int] = []
                table.withUnsafeBufferPointer { table in
                    intervals.forEachMember(of: chunk) { x in
                        guard x.bitPattern & 0x7F80_0000 != 0x7F80_0000 else { return }
                        let k = key(x)
                        let slot = Int(table[Int(k >> 16)])
                        guard slot >= 0 else { return }
                        members.append(slot &* bins &+ Int(k & 0xFFFF))
                    }
                }
                if !members.isEmpty { fine.increment(members) }
            }
        }
        let counts = fine.counts
        var answers: [Int: Double] = [:]
        for (slot, b) in chosen.enumerated() {
            for r in wanted[b] ?? [] {
                var within = r - starts[b]
                var low = 0
                while low < bins - 1 && within >= counts[slot * bins + low] {
                    within -= counts[slot * bins + low]
                    low += 1
                }
                answers[r] = Double(float(UInt32(b) << 16 | UInt32(low)))
            }
        }
        return answers
    }
}

/// Integer counts summed from several threads (integer sums do not depend on their order).
final class SharedCounts: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Int]

    init(count: Int) { storage = [Int](repeating: 0, count: count) }

    /// Adds 1 at each index of `indices`.
    func increment(_ indices: [Int]) {
        lock.lock()
        defer { lock.unlock() }
        storage.withUnsafeMutableBufferPointer { s in
            for i in indices { s[i] += 1 }
        }
    }

    /// Adds `local[i]` to count `i`.
    func add(_ local: UnsafeBufferPointer<UInt32>) {
        lock.lock()
        defer { lock.unlock() }
        storage.withUnsafeMutableBufferPointer { s in
            for i in 0..<min(s.count, local.count) where local[i] != 0 { s[i] += Int(local[i]) }
        }
    }

    var counts: [Int] {
        lock.lock()
        defer { lock.unlock() }
        return storage
    }
}
