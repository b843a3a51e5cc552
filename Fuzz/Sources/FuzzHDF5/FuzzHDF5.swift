import FuzzSupport

/// One HDF5 file per input, read in-process: this is the code qpk's HDF5 worker process runs
/// (spec/hdf5-mapping.md, "Hostile input"). libhdf5 itself is not instrumented, so coverage
/// guides the fuzzer through qpk's own tree walk, attribute decoding, Keras layout and metadata
/// code; crashes and hangs inside libhdf5 are expected here (that is why qpk isolates it) and are
/// replayed through `qpk validate` by Fuzz/replay-hdf5.sh, which must report each as one line.
private func fuzzHDF5(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    FuzzInput.exercise(FuzzInput.write(data, size, as: "input.h5"))
    return 0
}

@_cdecl("FuzzHDF5_main")
public func main(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    runFuzzer(argc, argv) { data, size in fuzzHDF5(data, size) }
}
