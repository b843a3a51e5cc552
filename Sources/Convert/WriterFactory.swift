import Foundation
import QPKCore
import Formats
import Quantize

/// Creates the writer for a plan's target, announcing every output tensor in plan order.
enum WriterFactory {
    static func makeWriter(
        plan: ConversionPlan, reader: any CheckpointReader, options: ConversionOptions
    ) throws -> any CheckpointWriter {
        if let layout = options.layout {
            return try RuntimeLayoutWriter(plan: plan, reader: reader, layout: layout, overwrite: options.overwrite)
        }
        let tensors = plan.tensors.map(\.output)
        let url = plan.destination
        switch plan.target.format {
        case .safetensors:
            if let maxShardSize = plan.target.maxShardSize {
                return try ShardedSafetensorsWriter(
                    url: url, tensors: tensors, metadata: reader.metadata, maxShardSize: maxShardSize,
                    overwrite: options.overwrite)
            }
            return try SafetensorsWriter(url: url, tensors: tensors, metadata: reader.metadata, overwrite: options.overwrite)
        case .hdf5:
            return try HDF5Writer(
                url: url, tensors: tensors, metadata: reader.metadata, overwrite: options.overwrite,
                compression: plan.target.gzipLevel.map { .gzip(level: $0) })
        case .qpk:
            let provenance = QPKProvenance(
                sources: try Checkpoint.sourceFiles(of: reader).map(QPKProvenance.source(describing:)),
                qpkVersion: ConversionOptions.toolVersion, createdBy: options.createdBy)
            return try QPKWriter(
                url: url, tensors: tensors, metadata: reader.metadata,
                recipe: try options.recipe.qpkHeaderValue(allocate: options.allocate), provenance: provenance,
                overwrite: options.overwrite)
        case .gguf:
            return try GGUFPlanning.makeWriter(plan: plan, reader: reader, options: options)
        }
    }
}

extension QuantizationRecipe {
    /// The recipe as the QPK header's `recipe` object (spec/qpk-format.md §4.5): numbers as
    /// numbers, so `outlier_budget` is the file-wide budget; the file default that each tensor's
    /// `quantization` object (§4.3) completes or overrides (its axis, and under `allocate` its bits
    /// and cap).
    func qpkHeaderValue(allocate: Bool) throws -> [String: QPKJSONValue] {
        var value = try JSONDecoder().decode([String: QPKJSONValue].self, from: JSONEncoder().encode(self))
        if allocate { value["allocate"] = .bool(true) }
        return value
    }
}
