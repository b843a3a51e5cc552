import QPKCore

/// Turns any stored tensor back into `Float` values: dense bytes through ``FloatCodec``, quantized
/// tensors as `(q − z) · s` per group, with outliers written back at full precision.
public enum Dequantizer {
    public enum Failure: Error, CustomStringConvertible, Sendable {
        case notConvertible(String, DType)
        case inconsistent(String, String)

        public var description: String {
            switch self {
            case let .notConvertible(name, dtype): "tensor '\(name)': dtype \(dtype.rawValue) has no float view"
            case let .inconsistent(name, reason): "tensor '\(name)': inconsistent quantized data: \(reason)"
            }
        }
    }

    /// Decodes `storage` of `info` into `destination` (which must hold `info.elementCount` floats).
    public static func decode(
        _ storage: TensorStorage, info: TensorInfo, into destination: UnsafeMutableBufferPointer<Float>
    ) throws {
        switch storage {
        case let .dense(bytes):
            guard info.dtype.isConvertibleToFloat else { throw Failure.notConvertible(info.name, info.dtype) }
            guard bytes.count >= info.byteCount else {
                throw Failure.inconsistent(info.name, "\(bytes.count) bytes for \(info.byteCount)")
            }
            bytes.withUnsafeBytes {
                FloatCodec.decode($0, dtype: info.dtype, count: info.elementCount, into: destination)
            }
        case let .quantized(tensor):
            try dequantize(tensor, into: destination)
        }
    }

    /// Runs `body` with the values of `storage` as `Float`: dense, 4-byte aligned `F32` bytes are
    /// read in place (a checkpoint's mapped pages, no copy and no second copy in memory); anything
    /// else is decoded into a temporary array first.
    public static func withFloats<R>(
        _ storage: TensorStorage, info: TensorInfo, _ body: (UnsafeBufferPointer<Float>) throws -> R
    ) throws -> R {
        if case let .dense(bytes) = storage, info.dtype == .f32, bytes.count >= info.byteCount,
           let base = bytes.bytes.baseAddress, Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 {
            return try bytes.withUnsafeBytes { raw in
                try body(UnsafeBufferPointer(start: raw.baseAddress!.assumingMemoryBound(to: Float.self), count: info.elementCount))
            }
        }
        let values = try floats(storage, info: info)
        return try values.withUnsafeBufferPointer(body)
    }

    /// Decodes `storage` into a new array.
    public static func floats(_ storage: TensorStorage, info: TensorInfo) throws -> [Float] {
        try [Float](unsafeUninitializedCapacity: info.elementCount) { buffer, count in
            try decode(storage, info: info, into: buffer)
            count = info.elementCount
        }
    }

    /// Reconstructs `x̂ = (q − z) · s` for every element, then restores the outliers.
    public static func dequantize(_ tensor: QuantizedTensor, into destination: UnsafeMutableBufferPointer<Float>) throws {
        let layout = tensor.layout
        let name = tensor.info.name
        // Hostile metadata must fail here, not trap below: check widths, group size and every
        // product with overflow-safe arithmetic before touching memory.
        guard [2, 3, 4, 8].contains(layout.bits) else {
            throw Failure.inconsistent(name, "\(layout.bits)-bit codes are not supported (2, 3, 4 or 8)")
        }
        guard layout.groupSize >= 1 else { throw Failure.inconsistent(name, "group size \(layout.groupSize) is below 1") }
        var count = 1
        for d in tensor.info.shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard d >= 0, !overflow else { throw Failure.inconsistent(name, "shape \(tensor.info.shape) overflows") }
            count = product
        }
        guard destination.count >= count else { throw Failure.inconsistent(name, "destination too small") }
        // Along the leading axes the codes describe the transpose: decode it, then transpose back.
        if layout.axis.transposes(tensor.info.shape) {
            let (rows, columns) = layout.matrixShape(of: tensor.info)
            let matrix = try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                try dequantizeMatrix(tensor, rows: rows, columns: columns, count: count, into: buffer)
                initialized = count
            }
            matrix.withUnsafeBufferPointer {
                Transpose.matrix($0, rows: rows, columns: columns, into: destination)
            }
            return
        }
        let columns = tensor.info.shape.last ?? 1
        let rows = tensor.info.shape.isEmpty ? 1 : (columns == 0 ? 0 : count / columns)
        try dequantizeMatrix(tensor, rows: rows, columns: columns, count: count, into: destination)
    }

    /// Reconstructs the `rows × columns` matrix view of `tensor` (its codes' order) into
    /// `destination`, outliers restored.
    static func dequantizeMatrix(
        _ tensor: QuantizedTensor, rows: Int, columns: Int, count: Int,
        into destination: UnsafeMutableBufferPointer<Float>
    ) throws {
        let layout = tensor.layout
        let name = tensor.info.name
        let groups = columns == 0 ? 0 : columns / layout.groupSize + (columns % layout.groupSize == 0 ? 0 : 1)
        let (groupCount, groupOverflow) = rows.multipliedReportingOverflow(by: groups)
        guard !groupOverflow, let scales = tensor.decodedScales(rows: rows, groupsPerRow: groups),
              tensor.zeros.count == groupCount
        else {
            throw Failure.inconsistent(name, "expected \(rows) × \(groups) scales and zero-points, found \(tensor.layout.scaleCodes == nil ? tensor.scales.count : tensor.scaleCodes?.count ?? 0) and \(tensor.zeros.count)")
        }
        guard tensor.codes.count >= (count / 8) * layout.bits + ((count % 8) * layout.bits + 7) / 8 else {
            throw Failure.inconsistent(name, "code stream too short")
        }
        if layout.needsGeneralDecoding {
            try dequantizeGeneral(tensor, rows: rows, columns: columns, groups: groups, scales: scales, into: destination)
            return
        }
        var rowCodes = [UInt8](repeating: 0, count: columns)
        tensor.codes.withUnsafeBufferPointer { packed in
            rowCodes.withUnsafeMutableBufferPointer { codes in
                for r in 0..<rows {
                    BitPacking.unpack(packed, bits: layout.bits, first: r * columns, count: columns, into: codes)
                    for g in 0..<groups {
                        let scale = scales[r * groups + g]
                        let zero = Float(tensor.zeros[r * groups + g])
                        let start = g * layout.groupSize
                        let end = min(start + layout.groupSize, columns)
                        for c in start..<end {
                            destination[r * columns + c] = (Float(codes[c]) - zero) * scale
                        }
                    }
                }
            }
        }
        if let outliers = tensor.outliers {
            try restore(outliers, rows: rows, columns: columns, name: name, into: destination)
        }
    }

    /// The QPK v2 decoding (spec/qpk-format.md §5.4–§5.7) of a matrix whose layout has a group
    /// index, a codebook or a transform: `x̂ = (v(q) − z)·s` with `v(q) = codebook[q]` (or `q`)
    /// and the group `groupIndex[c]` (or `c / groupSize`), then the inverse transform
    /// `x̂·H·D` (``HadamardTransform``) of every row, then the outliers, which are in the
    /// tensor's own (unrotated) domain.
    static func dequantizeGeneral(
        _ tensor: QuantizedTensor, rows: Int, columns: Int, groups: Int, scales: [Float],
        into destination: UnsafeMutableBufferPointer<Float>
    ) throws {
        let layout = tensor.layout
        let name = tensor.info.name
        var groupOf = (0..<columns).map { $0 / layout.groupSize }
        if layout.hasGroupIndex {
            guard let index = tensor.groupIndex, index.count == columns, index.allSatisfy({ Int($0) < groups }) else {
                throw Failure.inconsistent(name, "the group index needs \(columns) entries below \(groups)")
            }
            groupOf = index.map { Int($0) }
        }
        var values = (0..<(1 << layout.bits)).map { Float($0) }
        if layout.hasCodebook {
            guard let codebook = tensor.codebook, codebook.count == values.count else {
                throw Failure.inconsistent(name, "the codebook needs \(values.count) entries")
            }
            values = codebook.map { Float($0) }
        }
        if let transform = layout.transform {
            guard WeightTransform.isValidBlock(transform.blockSize, columns: columns),
                  let signs = tensor.transformSigns, signs.count == QuantizedByteCount.transformSigns(columns: columns)
            else { throw Failure.inconsistent(name, "transform block \(transform.blockSize) or its signs do not fit \(columns) columns") }
        }
        var rowCodes = [UInt8](repeating: 0, count: columns)
        tensor.codes.withUnsafeBufferPointer { packed in
            rowCodes.withUnsafeMutableBufferPointer { codes in
                for r in 0..<rows {
                    BitPacking.unpack(packed, bits: layout.bits, first: r * columns, count: columns, into: codes)
                    for c in 0..<columns {
                        let slot = r * groups + groupOf[c]
                        destination[r * columns + c] = (values[Int(codes[c])] - Float(tensor.zeros[slot])) * scales[slot]
                    }
                }
            }
        }
        if let transform = layout.transform, let signs = tensor.transformSigns {
            HadamardTransform.inverse(
                UnsafeMutableBufferPointer(rebasing: destination[0..<(rows * columns)]), rows: rows, columns: columns,
                blockSize: transform.blockSize, signs: signs)
        }
        if let outliers = tensor.outliers {
            try restore(outliers, rows: rows, columns: columns, name: name, into: destination)
        }
    }

    /// Writes the full-precision outlier values over the dequantized ones.
    static func restore(
        _ outliers: OutlierSet, rows: Int, columns: Int, name: String,
        into destination: UnsafeMutableBufferPointer<Float>
    ) throws {
        let perIndex = outliers.kind == .rows ? columns : outliers.kind == .columns ? rows : 1
        let (covered, overflow) = outliers.indices.count.multipliedReportingOverflow(by: perIndex)
        guard !overflow, outliers.values.count == covered else {
            throw Failure.inconsistent(name, "outlier values do not match their indices")
        }
        var v = 0
        switch outliers.kind {
        case .elements:
            for index in outliers.indices {
                guard index >= 0, index < rows * columns else { throw Failure.inconsistent(name, "outlier index \(index) out of range") }
                destination[Int(index)] = outliers.values[v]
                v += 1
            }
        case .rows:
            for index in outliers.indices {
                guard index >= 0, index < rows else { throw Failure.inconsistent(name, "outlier row \(index) out of range") }
                for c in 0..<columns { destination[Int(index) * columns + c] = outliers.values[v + c] }
                v += columns
            }
        case .columns:
            guard outliers.indices.allSatisfy({ $0 >= 0 && $0 < columns }) else {
                throw Failure.inconsistent(name, "outlier column out of range")
            }
            for r in 0..<rows {
                for index in outliers.indices {
                    destination[r * columns + Int(index)] = outliers.values[v]
                    v += 1
                }
            }
        }
    }
}
