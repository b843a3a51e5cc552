import FuzzSupport

/// One single-file safetensors checkpoint per input.
private func fuzzSafetensors(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    FuzzInput.exercise(FuzzInput.write(data, size, as: "input.safetensors"))
    return 0
}

@_cdecl("FuzzSafetensors_main")
public func main(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runFuzzer(argc, argv) { data, size in fuzzSafetensors(data, size) }
}
