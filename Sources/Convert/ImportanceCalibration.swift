import Foundation
import Formats
import Model
import QPKCore

/// `qpk calibrate MODEL_DIR -o FILE`: runs the full-precision model on calibration text and
/// records each linear layer's input statistics as an ``ImportanceMatrix`` (llama.cpp's imatrix,
/// spec/gguf.md §9), for `qpk convert --imatrix` and llama.cpp's `llama-quantize --imatrix`.
///
/// Every block sees the unquantized model's activations (one forward pass per batch, all layers
/// observed at once), as llama.cpp's `llama-imatrix` does; one chunk is one calibration passage
/// of at most `sequenceLength` tokens.
public enum ImportanceCalibration {
    /// The importance matrix of `folder`'s model on the passages `options` chooses.
    /// Entries are named as llama.cpp names the weights (`blk.0.attn_q.weight`, spec/gguf.md
    /// §8) when it has names for the model's architecture, so that `llama-quantize --imatrix`
    /// finds them in a GGUF of the same model; otherwise by the checkpoint's own weight names.
    /// `qpk convert --imatrix` accepts either.
    /// - Parameter progress: called after each batch with the passages done and their total.
    public static func run(
        folder: ModelFolder, options: CalibrationOptions,
        progress: ((_ done: Int, _ total: Int) -> Void)? = nil
    ) throws -> ImportanceMatrix {
        let named = LlamaCppArchitecture(folder.config) != nil
        let weightName = { (layer: String) in
            let weight = layer + ".weight"
            return named ? LlamaCppArchitecture.llamaCppName(of: weight) ?? weight : weight
        }
        let batches = try CalibratedConversion.batches(folder: folder, options: options)
        let model = try folder.loadModel()
        let observer = SquaredInputObserver()
        let total = batches.reduce(0) { $0 + $1.count }
        var done = 0
        for batch in batches {
            _ = try model.hiddenStates(batch, observer: observer)
            done += batch.count
            progress?(done, total)
        }
        var entries: [String: ImportanceMatrix.Entry] = [:]
        for layer in observer.layers {
            guard let (sums, rows) = observer.statistics(of: layer) else { continue }
            entries[weightName(layer)] = ImportanceMatrix.Entry(sumOfSquares: sums.map { Float($0) }, counts: [Float(rows)])
        }
        let dataset = options.source.name
        let chunkSize = batches.map(\.length).max() ?? 0
        return ImportanceMatrix(entries: entries, datasets: [dataset], chunkCount: total, chunkSize: chunkSize)
    }
}
