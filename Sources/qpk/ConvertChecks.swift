import Foundation
import QPKCore
import Formats
import Quantize
import Convert
import Inspect

extension QuantizationOptions {
    /// The recipe flags given on the command line, spelled as flags (`--bits`, …): they must
    /// take effect (``ConversionChecks/checkRecipeApplies(_:flags:)``).
    var givenFlags: [String] {
        var flags: [String] = []
        if method != nil { flags.append("--method") }
        if bits != nil { flags.append("--bits") }
        if groupSize != nil { flags.append("--group-size") }
        if scheme != nil { flags.append("--scheme") }
        if scaleSearch != nil { flags.append("--scale-search") }
        if outlierBudget != nil { flags.append("--outlier-budget") }
        if outlierKind != nil { flags.append("--outlier-kind") }
        if importance != nil { flags.append("--importance") }
        if imatrix != nil { flags.append("--imatrix") }
        if axis != .auto { flags.append("--axis") }
        if zeroPoints != nil { flags.append("--zero-points") }
        if transform != nil { flags.append("--transform") }
        if transformBlock != nil { flags.append("--transform-block") }
        if codebook != nil { flags.append("--codebook") }
        if scaleBits != nil { flags.append("--scale-bits") }
        if scaleOctaves != nil { flags.append("--scale-octaves") }
        if allocate { flags.append("--allocate") }
        flags += input.givenFlags
        if damp != nil { flags.append("--damp") }
        if actOrder { flags.append("--act-order") }
        if staticGroups { flags.append("--static-groups") }
        return flags
    }
}

/// The command line recorded in a QPK file's provenance (`created_by`).
enum RecordedCommandLine {
    /// `qpk` and the arguments, without `--threads N`: the thread count does not change the
    /// output, so recording it would make the same conversion write different bytes.
    static func provenance(_ arguments: [String]) -> String {
        var kept = ["qpk"]
        var skipNext = false
        for argument in arguments.dropFirst() {
            if skipNext {
                skipNext = false
                continue
            }
            if argument == "--threads" {
                skipNext = true
                continue
            }
            if argument.hasPrefix("--threads=") { continue }
            kept.append(argument)
        }
        return kept.joined(separator: " ")
    }
}
