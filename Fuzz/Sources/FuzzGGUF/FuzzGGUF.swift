import FuzzSupport

/// One GGUF file per input (seeds carry the magic, so most inputs reach the GGUF reader, its
/// metadata parser, tensor infos and block decoders).
private func fuzzGGUF(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    FuzzInput.exercise(FuzzInput.write(data, size, as: "input.gguf"))
    return 0
}

@_cdecl("FuzzGGUF_main")
public func main(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runFuzzer(argc, argv) { data, size in fuzzGGUF(data, size) }
}
