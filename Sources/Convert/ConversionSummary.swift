import Foundation

/// What happened to one tensor.
public struct TensorResult: Sendable, Codable {
    public var name: String
    public var action: String
    public var dtype: DType
    public var shape: [Int]
    /// Bytes the output spends on it (exact once written).
    public var bytes: Int
    public var bits: Int?
    public var groupSize: Int?
    /// Parameters kept at full precision as outliers.
    public var outliers: Int?
    public var sqnrDB: Double?
    /// Σx² of the source values (for pooled SQNR); not part of the JSON.
    var signalEnergy: Double?

    enum CodingKeys: String, CodingKey {
        case name, action, dtype, shape, bytes, bits, outliers
        case groupSize = "group_size"
        case sqnrDB = "sqnr_db"
    }
}

/// The outcome of a conversion, printed as a summary or as `--json`.
public struct ConversionSummary: Sendable, Codable {
    public var source: String
    public var sourceFormat: CheckpointFormat
    public var destination: String
    public var destinationFormat: CheckpointFormat
    public var tensors: [TensorResult]
    public var recipe: QuantizationRecipe?
    /// Parameters in quantized tensors and their effective bits per weight (everything stored).
    public var quantizedParameters: Int
    public var quantizedBitsPerWeight: Double?
    /// SQNR over all quantized tensors pooled: 10·log10(Σx² / Σ(x − x̂)²).
    public var sqnrDB: Double?
    public var outlierParameters: Int
    public var outputBytes: Int
    public var seconds: Double

    enum CodingKeys: String, CodingKey {
        case source, destination, tensors, recipe, seconds
        case sourceFormat = "source_format"
        case destinationFormat = "destination_format"
        case quantizedParameters = "quantized_parameters"
        case quantizedBitsPerWeight = "quantized_bits_per_weight"
        case sqnrDB = "sqnr_db"
        case outlierParameters = "outlier_parameters"
        case outputBytes = "output_bytes"
    }

    init(plan: ConversionPlan, results: [TensorResult], outputBytes: Int, seconds: Double, recipe: QuantizationRecipe?) {
        source = plan.source.path
        sourceFormat = plan.sourceFormat
        destination = plan.destination.path
        destinationFormat = plan.target.format
        tensors = results
        self.recipe = recipe
        self.outputBytes = outputBytes
        self.seconds = seconds
        let quantized = results.filter { $0.action == "quantize" }
        quantizedParameters = quantized.reduce(0) { $0 + $1.shape.reduce(1, *) }
        quantizedBitsPerWeight = quantizedParameters == 0 ? nil
            : Double(quantized.reduce(0) { $0 + $1.bytes } * 8) / Double(quantizedParameters)
        outlierParameters = quantized.reduce(0) { $0 + ($1.outliers ?? 0) }
        var signal = 0.0, noise = 0.0
        for result in quantized {
            guard let energy = result.signalEnergy, let sqnr = result.sqnrDB, sqnr.isFinite else { continue }
            signal += energy
            noise += energy / pow(10, sqnr / 10)
        }
        sqnrDB = quantized.isEmpty ? nil : (noise > 0 ? 10 * log10(signal / noise) : .infinity)
    }
}
