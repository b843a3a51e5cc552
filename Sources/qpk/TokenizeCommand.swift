import ArgumentParser
import Foundation
import Model

/// `qpk tokenize TOKENIZER_JSON`: token ids of each input line, one JSON array per line. A
/// diagnostic for checking qpk's tokenizers against Hugging Face `tokenizers`.
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Print the token ids of each line of standard input (diagnostic).",
        discussion: """
            Reads a Hugging Face tokenizer.json (WordPiece or byte-level BPE) and prints, for each \
            input line, a JSON array of token ids, with the special tokens its post-processor adds \
            and its truncation (spec/model.md).
            """,
        shouldDisplay: false)

    @Argument(help: "The tokenizer.json file.")
    var tokenizer: String

    @Flag(help: "Read each line as a JSON string (so texts may hold newlines and tabs).")
    var jsonLines = false

    @Flag(help: "Do not add the post-processor's special tokens.")
    var noSpecialTokens = false

    @Option(help: "Truncate to at most N ids (default: the file's truncation.max_length, if any).")
    var maxLength: Int?

    func run() throws {
        let tokenizer = try Tokenizer(contentsOf: URL(fileURLWithPath: self.tokenizer))
        var out = ""
        for text in try InputLines.read(jsonLines: jsonLines) {
            let ids = tokenizer.encode(text, addSpecialTokens: !noSpecialTokens, maxLength: maxLength)
            out += "[" + ids.map(String.init).joined(separator: ",") + "]\n"
        }
        FileHandle.standardOutput.write(Data(out.utf8))
    }
}

/// The texts of standard input: one per line, or one JSON string per line.
enum InputLines {
    static func read(jsonLines: Bool) throws -> [String] {
        let data = FileHandle.standardInput.readDataToEndOfFile()
        let text = String(decoding: data, as: UTF8.self)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        guard jsonLines else { return lines }
        return try lines.enumerated().map { number, line in
            guard let value = try? JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed]) as? String else {
                throw ValidationError("standard input line \(number + 1) is not a JSON string")
            }
            return value
        }
    }
}
