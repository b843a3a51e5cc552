import FuzzSupport

/// One QPK file per input (seeds carry the magic, so most inputs reach the QPK reader).
private func fuzzQPK(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    FuzzInput.exercise(FuzzInput.write(data, size, as: "input.qpk"))
    return 0
}

@_cdecl("FuzzQPK_main")
public func main(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runFuzzer(argc, argv) { data, size in fuzzQPK(data, size) }
}
