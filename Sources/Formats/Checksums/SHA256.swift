import Crypto

/// SHA-256 (FIPS 180-4) as lower-case hex, for QPK provenance (spec/qpk-format.md §4.7), computed
/// by swift-crypto.
public enum SHA256Hex {
    /// The digest of `bytes`.
    public static func digest(of bytes: UnsafeRawBufferPointer) -> String {
        hex(Crypto.SHA256.hash(data: bytes))
    }

    /// The digest of `bytes`.
    public static func digest(of bytes: [UInt8]) -> String {
        hex(Crypto.SHA256.hash(data: bytes))
    }

    /// The digest of everything fed to `update` (a large input in pieces).
    public struct Hasher {
        private var hasher = Crypto.SHA256()

        public init() {}

        public mutating func update(_ bytes: UnsafeRawBufferPointer) { hasher.update(bufferPointer: bytes) }

        public func finalize() -> String { SHA256Hex.hex(hasher.finalize()) }
    }

    static func hex(_ digest: Crypto.SHA256.Digest) -> String {
        digest.map { byte in
            let text = String(byte, radix: 16)
            return byte < 16 ? "0" + text : text
        }.joined()
    }
}
