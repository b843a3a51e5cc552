import Foundation
import QPKCore
import Formats
import Quantize

/// The JSON conventions of every qpk report (`spec/json-schemas.md`): pretty-printed, keys sorted,
/// absent values written as `null` (keys never disappear), and non-finite numbers written as the
/// strings `"inf"`, `"-inf"` and `"nan"` (which Python's `float()` parses).
public enum ReportJSON {
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return decoder
    }

    /// `value` as UTF-8 JSON text followed by exactly one newline (Foundation's pretty printer
    /// ends with one on some platforms and not on others).
    public static func data<T: Encodable>(_ value: T) throws -> Data {
        var data = try encoder().encode(value)
        while data.last == 0x0A { data.removeLast() }
        data.append(0x0A)
        return data
    }
}
