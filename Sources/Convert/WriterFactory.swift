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
            let provenance = try QPKProvenance.describing(sources: Checkpoint.sourceFiles(of: reader))
            return try QPKWriter(
                url: url, tensors: tensors, metadata: reader.metadata,
                recipe: options.recipe.dictionary, provenance: provenance, overwrite: options.overwrite)
        }
    }
}
