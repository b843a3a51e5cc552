import Foundation

/// The special tokens a tokenizer.json `post_processor` puts around a single sequence.
///
/// `BertProcessing` gives `[CLS] A [SEP]`, `RobertaProcessing` `<s> A </s>`, `TemplateProcessing`
/// whatever its `single` template lists (its `SpecialToken` entries, looked up in
/// `special_tokens`, around the `Sequence` entry); `ByteLevel` adds nothing.
struct PostProcessor: Sendable {
    var prefix: [Int32] = []
    var suffix: [Int32] = []

    static let supported = ["BertProcessing", "RobertaProcessing", "TemplateProcessing", "ByteLevel", "Sequence"]

    init() {}

    init(json: JSONObject) throws {
        let type = try json.string("type")
        switch type {
        case "BertProcessing", "RobertaProcessing":
            prefix = [try Self.pairID(json, "cls")]
            suffix = [try Self.pairID(json, "sep")]
        case "ByteLevel":
            break
        case "TemplateProcessing":
            let specials = try json.object("special_tokens")
            var seenSequence = false
            for (index, piece) in try json.objects("single").enumerated() {
                if piece.has("Sequence") {
                    seenSequence = true
                } else if let special = try piece.optionalObject("SpecialToken") {
                    let name = try special.string("id")
                    guard let entry = try specials.optionalObject(name) else {
                        throw ModelError.invalidField(json.path, key: "post_processor.special_tokens", rule: "lacks \(name), which the single template uses")
                    }
                    let ids = try entry.array("ids").map { value -> Int32 in
                        guard let n = value as? NSNumber, let id = Int32(exactly: n.doubleValue) else {
                            throw ModelError.invalidField(json.path, key: "post_processor.special_tokens.\(name).ids", rule: "must be integers")
                        }
                        return id
                    }
                    if seenSequence { suffix += ids } else { prefix += ids }
                } else {
                    throw ModelError.invalidField(json.path, key: "post_processor.single[\(index)]", rule: "must be a Sequence or a SpecialToken")
                }
            }
        case "Sequence":
            for step in try json.objects("processors").map(PostProcessor.init(json:)) {
                prefix = step.prefix + prefix
                suffix += step.suffix
            }
        default:
            throw ModelError.unsupportedTokenizerComponent(json.path, component: "post_processor", type: type, supported: Self.supported)
        }
    }

    /// `["[CLS]", 101]` → 101.
    private static func pairID(_ json: JSONObject, _ key: String) throws -> Int32 {
        let pair = try json.array(key)
        guard pair.count == 2, let number = pair[1] as? NSNumber, let id = Int32(exactly: number.doubleValue) else {
            throw ModelError.invalidField(json.path, key: "post_processor.\(key)", rule: "must be [token, id]")
        }
        return id
    }

    var addedCount: Int { prefix.count + suffix.count }
}
