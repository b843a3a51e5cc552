import Foundation
import QPKCore
import Formats
import Model

/// GGUF output from a Hugging Face model folder: the folder is read as llama.cpp names it
/// (``LlamaCppCheckpoint``), so the file carries llama.cpp's tensor names and metadata
/// (spec/gguf.md §8). Any other input keeps its tensor names and metadata as they are.
public enum GGUFModelExport {
    /// The reader a conversion reads from: `opened` (the weights of `input`), seen as llama.cpp
    /// names it when the output is a GGUF file and `input` is a folder with config.json.
    /// - Throws: ``ModelError`` when the folder's architecture, tensors or tokenizer have no
    ///   llama.cpp equivalent qpk writes.
    public static func reader(
        input: URL, opened: any CheckpointReader, target: OutputTarget, options: ConversionOptions
    ) throws -> any CheckpointReader {
        guard target.format == .gguf, options.layout == nil, isModelFolder(input) else { return opened }
        return try LlamaCppCheckpoint(folder: try ModelFolder(input), weights: opened)
    }

    /// Whether `url` is a folder holding config.json.
    public static func isModelFolder(_ url: URL) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && isDirectory.boolValue
            && FileManager.default.fileExists(atPath: url.appendingPathComponent("config.json").path)
    }

    /// One line on the model metadata written, or on why there is none.
    public static func describe(_ reader: any CheckpointReader) -> String? {
        if let model = reader as? LlamaCppCheckpoint {
            let vocabulary = model.vocabulary
            var line = "llama.cpp model: architecture \(model.architecture.rawValue), tokenizer \(vocabulary.model) (\(vocabulary.tokens.count) tokens"
            if !vocabulary.merges.isEmpty { line += ", \(vocabulary.merges.count) merges" }
            line += "), \(model.tensors.count) tensors under llama.cpp names"
            if !model.droppedTensors.isEmpty {
                let shown = model.droppedTensors.prefix(3).joined(separator: ", ") + (model.droppedTensors.count > 3 ? ", …" : "")
                line += "; dropped \(model.droppedTensors.count) it does not use: \(shown)"
            }
            return line
        }
        guard reader.format != .gguf else { return nil }
        return "note: tensor names and metadata kept as given; llama.cpp needs its names and model metadata, which qpk writes from a model folder (config.json, tokenizer.json, weights): pass the folder"
    }
}
