import ArgumentParser
import Foundation
import Inspect
import QPKCore
import Formats
import Quantize
import Convert

struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Compare two checkpoints tensor by tensor, across formats.",
        discussion: """
            Exit status: 0 when equal within tolerance (numpy.allclose: |a−b| ≤ atol + rtol·|b|), \
            1 when different, 2 on trouble. QPK tensors are dequantized on the fly, so diffing a \
            model with its .qpk shows the quantization error (SQNR, max abs, cosine) per tensor.

            Examples:
              qpk diff base.safetensors finetuned.safetensors
              qpk diff model.safetensors model.qpk
              qpk diff a.h5 b.safetensors --atol 1e-6 --rtol 1e-5
              qpk diff a.safetensors b.safetensors --map 'model.:'
              qpk diff model.safetensors model.qpk --report diff.html   # HTML (spec/report.md)
            """)

    @Argument(help: "The first checkpoint (A).")
    var a: String

    @Argument(help: "The second checkpoint (B, the reference of the tolerance rule).")
    var b: String

    @Option(help: "Absolute tolerance.")
    var atol: Double = 1e-8

    @Option(help: "Relative tolerance (times |b|).")
    var rtol: Double = 1e-5

    @Flag(help: "Treat NaN as equal to NaN.")
    var equalNan = false

    @Option(name: .customLong("map"), help: "Rename a leading FROM to TO in both checkpoints' names: 'FROM:TO' (repeatable).")
    var maps: [String] = []

    @Option(name: .customLong("tensor"), help: "Compare only tensors matching this glob (repeatable).")
    var tensors: [String] = []

    @Flag(help: "Print the comparison as JSON (schema: spec/json-schemas.md).")
    var json = false

    @OptionGroup var reportOptions: ReportOptions

    @OptionGroup var threading: ThreadOptions

    func run() throws {
        try threading.apply()
        let readerA = try Checkpoint.open(URL(fileURLWithPath: a))
        let readerB = try Checkpoint.open(URL(fileURLWithPath: b))
        let reportOutput = try reportOptions.open(json: json, inputs: [a, b])
        let rules = try maps.map { try NameMap.Rule(parsing: $0) }
        // Progress in bytes read from both files (by mapped name), so the bar shows GB/s.
        let map = NameMap(rules)
        let pairBytes = Dictionary((readerA.tensors + readerB.tensors).map { (map.apply(to: $0.name), $0.byteCount) }, uniquingKeysWith: +)
        let bar = ProgressBar(
            total: pairBytes.values.reduce(0, +), label: "comparing", showsRate: true, enabled: Terminal.stderrIsTTY && !json)
        let options = DiffOptions(
            tolerance: Tolerance(relative: rtol, absolute: atol, equalNaN: equalNan),
            nameMap: map, tensorFilters: tensors.map(Glob.init),
            progress: { _, _, name in bar.advance(by: pairBytes[name] ?? 0, detail: name) })
        let diff = try CheckpointDiff.compare(readerA, readerB, options: options)
        bar.finish()
        if reportOptions.path != nil {
            try reportOptions.write(try HTMLReport.diff(diff), to: reportOutput, quiet: json)
        }
        if json {
            FileHandle.standardOutput.write(try diff.jsonData())
        } else if reportOptions.path == nil {
            Terminal.printBlock(diff.renderText(colors: Colors(enabled: Terminal.useColor)))
        }
        if !diff.summary.checkpointsEqual { throw ExitCode(1) }
    }
}
