import Testing
@testable import Formats
import QPKCore

@Suite("Checksums: CRC-32 (zlib) and SHA-256 (FIPS 180-4)")
struct ChecksumTests {
    @Test("CRC-32 of \"123456789\" is the catalogue check value 0xCBF43926")
    func crcCheckValue() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
    }

    @Test("CRC-32 of nothing is 0, and incremental updates equal one pass")
    func crcIncremental() {
        #expect(CRC32.checksum([UInt8]()) == 0)
        let bytes = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        var crc = CRC32()
        crc.update(Array(bytes[0..<3]))
        crc.update(Array(bytes[3..<4097]))
        crc.update(Array(bytes[4097...]))
        #expect(crc.value == CRC32.checksum(bytes))
        #expect(CRC32.checksum(Array("The quick brown fox jumps over the lazy dog".utf8)) == 0x414F_A339)
    }

    @Test("SHA-256 of the empty string")
    func sha256Empty() {
        #expect(SHA256Hex.digest(of: [UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test("SHA-256 of \"abc\" (FIPS 180-4 example)")
    func sha256ABC() {
        #expect(SHA256Hex.digest(of: Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test("SHA-256 of the 448-bit two-block message (padding spills into a second block)")
    func sha256TwoBlocks() {
        let message = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        #expect(SHA256Hex.digest(of: message) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test("SHA-256 of 1 MiB of i mod 251, in one pass and in odd-sized pieces, matches Python hashlib")
    func sha256Megabyte() {
        // python3 -c "import hashlib; print(hashlib.sha256(bytes(i % 251 for i in range(1 << 20))).hexdigest())"
        let expected = "631b84027d6b9e52b539c4e8373622d23032dfadc64d60af87339c9037e4f769"
        let bytes = (0..<(1 << 20)).map { UInt8($0 % 251) }
        #expect(SHA256Hex.digest(of: bytes) == expected)
        var hasher = SHA256Hex.Hasher()
        var start = 0
        var step = 1
        while start < bytes.count {
            let end = min(bytes.count, start + step)
            Array(bytes[start..<end]).withUnsafeBytes { hasher.update($0) }
            start = end
            step = step * 3 + 1
        }
        #expect(hasher.finalize() == expected)
    }

    @Test("SHA-256 of one million 'a' (FIPS 180-4 long message)")
    func sha256MillionA() {
        let bytes = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        #expect(SHA256Hex.digest(of: bytes) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}
