import Foundation
import Formats
import QPKCore
import Quantize

/// What happens (or happened) to one output tensor.
public struct TensorResult: Sendable, Encodable {
    public var name: String
    /// `copy`, `cast`, `quantize`, `dequantize` or `outlier-mask`.
    public var action: String
    public var dtype: DType
    public var shape: [Int]
    /// The planned size: exact for dense tensors, the most a quantized tensor can take.
    public var estimatedBytes: Int
    /// Bytes the output spends on it, once written; `nil` in a dry run.
    public var bytes: Int?
    /// The quantization decision of a tensor quantized for QPK or a runtime layout.
    public var decision: QuantizationDecision?
    /// The ggml block type of a tensor quantized for GGUF (`Q4_K`, …).
    public var ggmlType: String?
    /// Parameters kept at full precision as outliers (quantized and dequantized tensors).
    public var outliers: Int?
    /// The measured SQNR of a quantized tensor (or of a copied one, from its QPK record).
    public var sqnrDB: Double?
    /// Σx² of the source values (for pooled SQNR); not part of the JSON.
    var signalEnergy: Double?

    init(planned entry: PlannedTensor) {
        name = entry.output.name
        action = entry.action.name
        dtype = entry.output.dtype
        shape = entry.output.shape
        estimatedBytes = entry.estimatedBytes
        if case let .quantize(decision) = entry.action { self.decision = decision }
        if case let .ggmlQuantize(type) = entry.action { ggmlType = type.name }
    }

    /// Effective bits per weight of what was (or will be) stored.
    public var bitsPerWeight: Double? {
        let n = shape.reduce(1, *)
        return n == 0 ? nil : Double((bytes ?? estimatedBytes) * 8) / Double(n)
    }

    enum CodingKeys: String, CodingKey {
        case name, action, dtype, shape, bytes, decision, outliers
        case ggmlType = "ggml_type"
        case estimatedBytes = "estimated_bytes"
        case bitsPerWeight = "bits_per_weight"
        case sqnrDB = "sqnr_db"
    }

    /// Every key, `null` where there is no value (spec/json-schemas.md, `qpk convert`).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(action, forKey: .action)
        try c.encode(dtype, forKey: .dtype)
        try c.encode(shape, forKey: .shape)
        try c.encode(estimatedBytes, forKey: .estimatedBytes)
        try c.encode(bytes, forKey: .bytes)
        try c.encode(bitsPerWeight, forKey: .bitsPerWeight)
        try c.encode(decision, forKey: .decision)
        try c.encode(ggmlType, forKey: .ggmlType)
        try c.encode(outliers, forKey: .outliers)
        try c.encode(sqnrDB, forKey: .sqnrDB)
    }
}

/// The outcome of a conversion — or, for a dry run, its plan — printed as a summary or as
/// `--json`. Both use the same keys; what only a real run knows is `null` in a dry run.
public struct ConversionSummary: Sendable, Encodable {
    /// The source and destination paths as given.
    public var source: String
    public var sourceFormat: CheckpointFormat
    public var destination: String
    public var destinationFormat: CheckpointFormat
    public var dryRun: Bool
    public var tensors: [TensorResult]
    /// The file-wide recipe, for QPK output.
    public var recipe: QuantizationRecipe?
    /// Whether `--allocate` chose per-tensor widths.
    public var allocate: Bool
    /// Parameters in quantized tensors and their effective bits per weight (everything stored).
    public var quantizedParameters: Int
    public var quantizedBitsPerWeight: Double?
    /// SQNR over all quantized tensors pooled: 10·log10(Σx² / Σ(x − x̂)²).
    public var sqnrDB: Double?
    public var outlierParameters: Int?
    /// The planned payload (headers excluded).
    public var estimatedBytes: Int
    /// The size on disk of what was written; `nil` in a dry run.
    public var outputBytes: Int?
    public var seconds: Double?

    /// The summary of a plan that was not run (`--dry-run`).
    public init(plan: ConversionPlan, options: ConversionOptions) {
        self.init(plan: plan, options: options, results: plan.tensors.map(TensorResult.init(planned:)),
                  dryRun: true, outputBytes: nil, seconds: nil)
    }

    init(
        plan: ConversionPlan, options: ConversionOptions, results: [TensorResult], dryRun: Bool,
        outputBytes: Int?, seconds: Double?
    ) {
        source = plan.source.relativePath
        sourceFormat = plan.sourceFormat
        destination = plan.destination.relativePath
        destinationFormat = plan.target.format
        self.dryRun = dryRun
        tensors = results
        recipe = plan.target.format == .qpk ? options.recipe : nil
        allocate = plan.target.format == .qpk && options.allocate
        estimatedBytes = plan.estimatedBytes
        self.outputBytes = outputBytes
        self.seconds = seconds
        let quantized = results.filter { $0.decision != nil || $0.ggmlType != nil }
        quantizedParameters = quantized.reduce(0) { $0 + $1.shape.reduce(1, *) }
        quantizedBitsPerWeight = quantizedParameters == 0 ? nil
            : Double(quantized.reduce(0) { $0 + ($1.bytes ?? $1.estimatedBytes) } * 8) / Double(quantizedParameters)
        outlierParameters = dryRun ? nil : quantized.reduce(0) { $0 + ($1.outliers ?? 0) }
        var signal = 0.0, noise = 0.0
        for result in quantized {
            guard let energy = result.signalEnergy, let sqnr = result.sqnrDB, sqnr.isFinite else { continue }
            signal += energy
            noise += energy / pow(10, sqnr / 10)
        }
        sqnrDB = quantized.isEmpty || dryRun ? nil : (noise > 0 ? 10 * log10(signal / noise) : .infinity)
    }

    enum CodingKeys: String, CodingKey {
        case source, destination, tensors, recipe, allocate, seconds
        case sourceFormat = "source_format"
        case destinationFormat = "destination_format"
        case dryRun = "dry_run"
        case quantizedParameters = "quantized_parameters"
        case quantizedBitsPerWeight = "quantized_bits_per_weight"
        case sqnrDB = "sqnr_db"
        case outlierParameters = "outlier_parameters"
        case estimatedBytes = "estimated_bytes"
        case outputBytes = "output_bytes"
    }

    /// Every key, `null` where there is no value (spec/json-schemas.md, `qpk convert`).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(source, forKey: .source)
        try c.encode(sourceFormat, forKey: .sourceFormat)
        try c.encode(destination, forKey: .destination)
        try c.encode(destinationFormat, forKey: .destinationFormat)
        try c.encode(dryRun, forKey: .dryRun)
        try c.encode(recipe, forKey: .recipe)
        try c.encode(allocate, forKey: .allocate)
        try c.encode(tensors, forKey: .tensors)
        try c.encode(quantizedParameters, forKey: .quantizedParameters)
        try c.encode(quantizedBitsPerWeight, forKey: .quantizedBitsPerWeight)
        try c.encode(outlierParameters, forKey: .outlierParameters)
        try c.encode(sqnrDB, forKey: .sqnrDB)
        try c.encode(estimatedBytes, forKey: .estimatedBytes)
        try c.encode(outputBytes, forKey: .outputBytes)
        try c.encode(seconds, forKey: .seconds)
    }
}
