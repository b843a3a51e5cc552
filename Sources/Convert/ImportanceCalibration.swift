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
    /// - Parameters:
    ///   - weightName: the entry name of a linear layer (its tensor name without `.weight`);
    ///     by default the checkpoint's own weight name, `NAME.weight`.
    ///   - progress: called after each batch with the passages done and their total.
    public static func run(
        folder: ModelFolder, options: CalibrationOptions,
        weightName: (String) -> String = { $0 + ".weight" },
        progress: ((_ done: Int, _ total: Int) -> Void)? = nil
    ) throws -> ImportanceMatrix {
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
        let dataset = options.text?.lastPathComponent ?? "qpk built-in calibration text"
        let chunkSize = batches.map(\.length).max() ?? 0
        return ImportanceMatrix(entries: entries, datasets: [dataset], chunkCount: total, chunkSize: chunkSize)
    }
}
