import Formats
import FuzzSupport

/// One GGUF file per input (seeds carry the magic, so most inputs reach the GGUF reader, its
/// metadata parser, tensor infos and block decoders), also read as an importance matrix: the
/// imatrix GGUF rules, and the legacy `.dat` parser for inputs without the magic.
private func fuzzGGUF(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    let url = FuzzInput.write(data, size, as: "input.gguf")
    FuzzInput.exercise(url)
    _ = try? ImportanceMatrix(contentsOf: url)
    return 0
}

@_cdecl("FuzzGGUF_main")
public func main(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runFuzzer(argc, argv) { data, size in fuzzGGUF(data, size) }
}
