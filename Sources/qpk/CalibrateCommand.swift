import ArgumentParser
import Convert
import Formats
import Foundation
import Inspect
import Model

/// `qpk calibrate MODEL_DIR -o FILE.gguf`: the importance matrix of a model on calibration text.
struct CalibrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Measure each linear layer's input statistics on calibration text or random tokens (an importance matrix).",
        discussion: """
            Runs the model of MODEL_DIR (config.json, tokenizer.json and its weights; BERT or llama \
            family) on the calibration passages (or, with --random-tokens, on random sequences of its \
            tokenizer's ordinary tokens: no data) and writes, per linear weight, the sum of the \
            squares of its inputs per column and the number of tokens: llama.cpp's imatrix GGUF \
            format (spec/gguf.md §9). Use it with `qpk convert --imatrix FILE`, or with llama.cpp's \
            llama-quantize --imatrix.

              qpk calibrate model/ --calibration calib.txt -o model.imatrix.gguf
              qpk calibrate model/ --random-tokens -o model.imatrix.gguf     # no data
              qpk convert model/model.safetensors model.qpk --imatrix model.imatrix.gguf
            """)

    @Argument(help: "The model folder (or its weights file, with config.json and tokenizer.json beside it).")
    var model: String

    @Option(name: [.short, .long], help: "The importance matrix to write (.gguf).")
    var output: String

    @OptionGroup var input: CalibrationInputOptions

    @Flag(help: "Replace an existing output.")
    var force = false

    @OptionGroup var threading: ThreadOptions

    func validate() throws {
        guard URL(fileURLWithPath: output).pathExtension.lowercased() == "gguf" else {
            throw ValidationError("\(output): the importance matrix is written in llama.cpp's GGUF form; give a .gguf output")
        }
    }

    func run() throws {
        try threading.apply()
        let folder = try ModelFolder(CalibratedConversion.modelFolder(of: URL(fileURLWithPath: model)))
        let options = try input.options()
        let bar = ProgressBar(total: options.samples, label: "calibrating", enabled: Terminal.stderrIsTTY)
        let matrix = try ImportanceCalibration.run(folder: folder, options: options, progress: { done, total in
            bar.update(done: done, total: total, detail: "passages")
        })
        bar.finish()
        try matrix.write(to: URL(fileURLWithPath: output), overwrite: force)
        let tokens = matrix.entries.values.first.map { Int($0.counts.reduce(0, +)) } ?? 0
        print("\(output): \(matrix.entries.count) weights, \(matrix.chunkCount) passages, \(tokens) tokens (\(matrix.datasets.joined(separator: ", ")))")
    }
}
