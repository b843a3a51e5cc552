import ArgumentParser
import Formats
import Foundation
import Inspect
import QPKCore
import Formats
import Quantize
import Convert

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show the tensors of a checkpoint, with statistics and quantization details.",
        discussion: """
            Examples:
              qpk inspect model.safetensors --stats
              qpk inspect model.qpk --tensor 'encoder.layer.0.*'
              qpk inspect model.safetensors --stats --histogram --tensor '*.attention.*'
              qpk inspect model.h5 --json
              qpk inspect model.qpk --report report.html     # HTML, no network (spec/report.md)
            """)

    @Argument(help: "A safetensors file or shard directory, an HDF5 file or a QPK file.")
    var file: String

    @Flag(help: "Compute per-tensor statistics in one streaming pass (reads every selected tensor).")
    var stats = false

    @Flag(help: "Add a histogram per tensor (implies --stats).")
    var histogram = false

    @Option(help: "Histogram bins (default 24, 64 in --report; needs --histogram or --report).")
    var bins: Int?

    @Option(name: .customLong("tensor"), help: "Show only tensors matching this glob (repeatable).")
    var tensors: [String] = []

    @Flag(help: "Print the report as JSON (schema: spec/json-schemas.md).")
    var json = false

    @OptionGroup var reportOptions: ReportOptions

    @OptionGroup var threading: ThreadOptions

    func run() throws {
        try threading.apply()
        // The HTML report draws every tensor's histogram: it implies --stats --histogram.
        let wantsReport = reportOptions.path != nil
        if let bins {
            guard histogram || wantsReport else {
                throw UsageError(.notApplicable, "--bins sets the histogram's bins and needs --histogram or --report")
            }
            try UsageError.requireCount(bins, atLeast: 1, option: "--bins")
        }
        let reader = try Checkpoint.open(URL(fileURLWithPath: file))
        let reportOutput = try reportOptions.open(json: json, inputs: [file])
        let wantsStats = stats || histogram || wantsReport
        let tensorBytes = Dictionary(reader.tensors.map { ($0.name, $0.byteCount) }, uniquingKeysWith: +)
        let bar = ProgressBar(
            total: tensorBytes.values.reduce(0, +), label: "inspecting", showsRate: true,
            enabled: Terminal.stderrIsTTY && wantsStats)
        let options = InspectOptions(
            statistics: wantsStats, histogramBins: wantsReport ? (bins ?? 64) : histogram ? (bins ?? 24) : 0,
            tensorFilters: tensors.map(Glob.init),
            progress: { _, _, name in bar.advance(by: tensorBytes[name] ?? 0, detail: name) })
        let report = try InspectReport.build(reader: reader, options: options)
        bar.finish()
        if wantsReport {
            let html = try HTMLReport.inspect(report, outlierMaps: try OutlierMap.maps(of: report, reader: reader))
            try reportOptions.write(html, to: reportOutput, quiet: json)
            if !json { return }
        }
        if json {
            FileHandle.standardOutput.write(try report.jsonData())
        } else {
            Terminal.printBlock(report.renderText(colors: Colors(enabled: Terminal.useColor)))
        }
    }
}
