import ArgumentParser
import Foundation
import Model

/// `qpk embed MODEL_DIR`: runs qpk's own forward pass on each input line and prints the
/// mean-pooled sentence embedding (and optionally the last hidden states) as JSON lines.
struct EmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Print sentence embeddings from qpk's forward pass (diagnostic).",
        discussion: """
            MODEL_DIR holds config.json, tokenizer.json and model.safetensors (BERT or llama family). Each \
            line of standard input is one sentence; each output line is a JSON object with \
            "tokens" (the ids) and "embedding" (the mean of the last hidden states over the \
            tokens), plus "hidden_states" (tokens × hidden) with --hidden-states (spec/model.md).
            """,
        shouldDisplay: false)

    @Argument(help: "The model folder.")
    var model: String

    @Flag(help: "L2-normalise each embedding (the sentence-transformers Normalize module).")
    var normalize = false

    @Flag(help: "Also print the last hidden states of every token.")
    var hiddenStates = false

    @Flag(help: "Read each line as a JSON string.")
    var jsonLines = false

    @Option(help: "Sentences per forward pass.")
    var batchSize = 32

    @Option(help: "Truncate to at most N tokens (default: the tokenizer's truncation, else the model's positions).")
    var maxLength: Int?

    func validate() throws {
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
        if let maxLength, maxLength < 2 { throw ValidationError("--max-length must be at least 2") }
    }

    func run() throws {
        let folder = try ModelFolder(URL(fileURLWithPath: model))
        let encoder = try folder.loadModel()
        let limit = maxLength ?? folder.tokenizer.maxLength ?? (folder.config.maxPositions - folder.config.positionOffset)
        let sentences = try InputLines.read(jsonLines: jsonLines)
        let output = FileHandle.standardOutput
        for start in stride(from: 0, to: sentences.count, by: batchSize) {
            let slice = sentences[start..<min(start + batchSize, sentences.count)]
            let batch = TokenBatch(slice.map { folder.tokenizer.encode($0, maxLength: limit) }, padID: folder.tokenizer.padID)
            let hidden = try encoder.hiddenStates(batch, observer: nil)
            let pooled = meanPooled(hidden, batch: batch, normalize: normalize)
            var text = ""
            for s in 0..<batch.count {
                let ids = batch.ids[(s * batch.length)..<(s * batch.length + batch.lengths[s])]
                text += "{\"tokens\":[" + ids.map(String.init).joined(separator: ",") + "],\"embedding\":" + Self.json(pooled[s])
                if hiddenStates {
                    let rows = (0..<batch.lengths[s]).map { Self.json(hidden.row(s * batch.length + $0)) }
                    text += ",\"hidden_states\":[" + rows.joined(separator: ",") + "]"
                }
                text += "}\n"
            }
            output.write(Data(text.utf8))
        }
    }

    private static func json<C: Collection>(_ values: C) -> String where C.Element == Float {
        "[" + values.map { "\($0)" }.joined(separator: ",") + "]"
    }
}
