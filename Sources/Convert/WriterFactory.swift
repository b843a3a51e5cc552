import Foundation

/// Creates the writer for a plan's target, announcing every output tensor in plan order.
enum WriterFactory {
    static func makeWriter(
        plan: ConversionPlan, reader: any CheckpointReader, options: ConversionOptions
    ) throws -> any CheckpointWriter {
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
                recipe: options.recipe.qpkHeaderValue, provenance: provenance, overwrite: options.overwrite)
        case .gguf:
            return try GGUFPlanning.makeWriter(plan: plan, reader: reader, options: options)
        }
    }
}

extension QuantizationRecipe {
    /// The recipe as the QPK header's `recipe` object (spec/qpk-format.md §4.5): numbers as
    /// numbers, so `outlier_budget` is the file-wide budget.
    var qpkHeaderValue: [String: QPKJSONValue] {
        [
            "method": .string(method.rawValue),
            "scheme": .string(scheme.rawValue),
            "bits": .integer(Int64(bits)),
            "group_size": groupSize.map { .integer(Int64($0)) } ?? .string("row"),
            "scale_search": .string(scaleSearch.rawValue),
            "outlier_budget": .number(effectiveOutlierBudget),
            "outlier_kind": .string(outlierKind.resolved.rawValue),
            "max_bits_per_weight": maxBitsPerWeight.map { .number($0) } ?? .null,
            "importance": .string(importance.rawValue),
        ]
    }
}
