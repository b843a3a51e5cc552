import QPKCore

extension QPKReader {
    /// The stored bytes of an `affine` tensor (every blob), or `nil` for a `raw` one.
    public func quantizedByteCount(of tensor: TensorInfo) -> Int? {
        guard let record = record(for: tensor.name), record.encoding == .affine else { return nil }
        return record.storedByteCount
    }
}
