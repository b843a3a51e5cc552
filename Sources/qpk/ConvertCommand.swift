import ArgumentParser
import Convert
import Formats
import Foundation
import Inspect
import Model
import QPKCore
import Formats
import Quantize

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a checkpoint between safetensors, HDF5, QPK and GGUF, quantizing or dequantizing on the way.",
        discussion: """
            Writing .qpk quantizes the selected weights task-agnostically (default recipe: PreQuant, \
            4 bits) and records the outlier parameters kept at full precision. Writing .safetensors \
            or .h5 from a .qpk dequantizes. The output is written to a temporary file and renamed, \
            and an existing output is never replaced without --force.

            Examples:
              qpk convert model.safetensors model.qpk --bits 4 --group-size 64
              qpk convert model.qpk restored.safetensors --dtype f32
              qpk convert shards-dir/ merged.safetensors
              qpk convert model.safetensors out-dir/ --max-shard-size 2GB
              qpk convert model.h5 model.safetensors
              qpk convert model.qpk tuned.qpk --outlier-values tuned-outliers.safetensors
              qpk convert model.safetensors model.gguf --type Q4_K
              qpk convert model-folder/ model.qpk --calibration calib.txt --bits 3   (BoA)
              qpk convert model-folder/ model.qpk --method gptq --calibration calib.txt
            """)

    @Argument(help: "The source checkpoint: a file, a shard directory or a *.safetensors.index.json.")
    var input: String

    @Argument(help: "The output: *.safetensors, *.h5/*.hdf5, *.qpk, *.gguf, or a directory for shards.")
    var output: String

    @OptionGroup var quantization: QuantizationOptions

    @Option(help: "Cast floating tensors to this dtype (f32, f16, bf16, …); for a .qpk source, the dequantized dtype.")
    var dtype: String?

    @Option(name: .customLong("include"), help: "Quantize the tensors matching this glob (repeatable).")
    var include: [String] = []

    @Option(name: .customLong("exclude"), help: "Never quantize the tensors matching this glob (repeatable).")
    var exclude: [String] = []

    @Option(name: .customLong("drop"), help: "Leave the tensors matching this glob out of the output (repeatable).")
    var drop: [String] = []

    @Option(help: "Write a model folder in a runtime's quantized layout: mlx (MLX affine) or gptq (AutoGPTQ/transformers). Default group size 64 (mlx) or 128 (gptq).")
    var layout: RuntimeLayout?

    @Option(help: "Write safetensors shards of at most this size (e.g. 5GB, 500MB) into the output directory.")
    var maxShardSize: String?

    @Option(help: "HDF5 output: chunked datasets compressed with gzip[:level] (level 1-9, default 4).")
    var compression: String?

    @Flag(help: "Dequantizing: also write a BOOL <name>.outlier_mask tensor per quantized weight.")
    var outlierMask = false

    @Option(help: "With .qpk input and output: copy it, replacing only the outlier values by the 1-D F32 tensors of this safetensors file (README: outlier masks).")
    var outlierValues: String?

    @Flag(help: "Allow --dtype to cast floating tensors to an integer or bool dtype (rounds every value; refused otherwise).")
    var allowLossyCast = false

    @Flag(help: "Print the plan (action, bits, bytes per tensor) and the final size; write nothing.")
    var dryRun = false

    @Flag(help: "Replace an existing output.")
    var force = false

    @Flag(help: "Print a JSON summary on stdout.")
    var json = false

    @OptionGroup var threading: ThreadOptions

    @Option(help: "GGUF output: the ggml type of the selected weights (Q4_0, Q4_1, Q5_0, Q8_0, Q4_K, Q6_K, IQ4_NL, F16, BF16, F32).")
    var type: GGMLType?

    /// `--type` without a `.gguf` output is a usage error: one line, exit 2.
    private func checkTypeUsage() throws {
        if type != nil, CheckpointFormat(pathExtension: URL(fileURLWithPath: output).pathExtension) != .gguf {
            Terminal.error("--type applies to GGUF output only: write to a .gguf file, or use --bits/--method for .qpk")
            throw ExitCode(2)
        }
    }

    func run() throws {
        if let outlierValues { return try replaceOutlierValues(from: outlierValues) }
        try checkTypeUsage()
        let inputURL = URL(fileURLWithPath: input)
        let outputURL = URL(fileURLWithPath: output)
        let calibration = try quantization.calibrationOptions()
        // Calibrated quantization runs the model: the input is its folder (or a weights file in it).
        let modelFolder = try calibration.map { _ in try ModelFolder(CalibratedConversion.modelFolder(of: inputURL)) }
        let opened = try Checkpoint.open(try modelFolder?.weightsURL ?? inputURL)
        let target = try layout == nil
            ? OutputTarget.forDestination(outputURL, maxShardSize: try parsedShardSize(), gzipLevel: try parsedGzipLevel())
            : layoutTarget(outputURL)
        if inputURL.standardizedFileURL.path == outputURL.standardizedFileURL.path {
            throw ConversionError.sameFile(outputURL.path)
        }
        var recipe = try quantization.recipe(uniformOutput: layout != nil)
        if layout != nil, quantization.groupSize == nil { recipe.groupSize = nil }  // the layout's default
        var options = ConversionOptions(
            recipe: recipe, axis: quantization.axis.axis, allocate: quantization.allocate,
            dtype: try parsedDType(),
            include: include.map(Glob.init), exclude: exclude.map(Glob.init), drop: drop.map(Glob.init),
            overwrite: force, outlierMask: outlierMask)
        options.layout = layout
        options.ggufType = type
        options.workers = try threading.apply()
        options.allowLossyCast = allowLossyCast
        options.importanceMatrix = try quantization.imatrix.map { try ImportanceMatrix(contentsOf: URL(fileURLWithPath: $0)) }
        options.createdBy = RecordedCommandLine.provenance(CommandLine.arguments)
        // GGUF from a model folder: llama.cpp's tensor names and metadata (spec/gguf.md §8).
        let reader = try GGUFModelExport.reader(input: inputURL, opened: opened, target: target, options: options)
        let plan = try ConversionPlanner.plan(reader: reader, destination: outputURL, target: target, options: options)
        try ConversionChecks.checkRecipeApplies(plan, flags: quantization.givenFlags)

        if dryRun {
            try DryRunPrinter.print(ConversionSummary(plan: plan, options: options), json: json)
            return
        }
        if let calibration, let modelFolder {
            guard target.format == .qpk, layout == nil else { throw CalibrationError.needsQPKOutput(outputURL.path) }
            let blocks = ProgressBar(total: modelFolder.config.layerCount, label: "calibrating", enabled: Terminal.stderrIsTTY && !json)
            let summary = try CalibratedConversion.run(
                plan: plan, options: options, reader: reader, folder: modelFolder, calibration: calibration
            ) { done, total, detail in blocks.update(done: done, total: total, detail: detail) }
            blocks.finish()
            if json { try Terminal.printJSON(summary) } else { ConvertSummaryPrinter.print(summary) }
            return
        }
        // Progress in source bytes, so the bar shows GB/s and the time left.
        let sourceBytes = Dictionary(plan.tensors.map { ($0.output.name, $0.source.byteCount) }, uniquingKeysWith: +)
        let bar = ProgressBar(
            total: sourceBytes.values.reduce(0, +), label: "converting", showsRate: true, enabled: Terminal.stderrIsTTY && !json)
        let summary = try Converter(plan: plan, options: options).run(reader: reader) { name in
            bar.advance(by: sourceBytes[name] ?? 0, detail: name)
        }
        bar.finish()
        if json {
            try Terminal.printJSON(summary)
        } else {
            ConvertSummaryPrinter.print(summary)
            if target.format == .gguf {
                GGUFSummaryPrinter.print(summary, plan: plan, options: options)
                if let line = GGUFModelExport.describe(reader) { print(line) }
            }
        }
    }

    /// The output of `--layout`: a model folder, never a file name with a checkpoint extension.
    private func layoutTarget(_ url: URL) throws -> OutputTarget {
        if CheckpointFormat(pathExtension: url.pathExtension) != nil { throw ConversionError.layoutNeedsFolder(url.path) }
        for (flag, given) in [
            ("--allocate", quantization.allocate), ("--outlier-budget", quantization.outlierBudget != nil),
            ("--outlier-kind", quantization.outlierKind != nil), ("--axis", quantization.axis != .auto),
            ("--max-shard-size", maxShardSize != nil), ("--compression", compression != nil),
            ("--outlier-mask", outlierMask), ("--group-size row", quantization.groupSize.map { QuantizationRecipe.parseGroupSize($0) == .some(nil) } ?? false),
        ] where given {
            throw ValidationError("\(flag) does not apply to --layout \(layout!.rawValue): the layout stores groups of 32 to 256 along the input, without outliers")
        }
        return OutputTarget(format: .safetensors)
    }

    private func parsedDType() throws -> DType? {
        guard let dtype else { return nil }
        guard let parsed = DType(userName: dtype), parsed.isConvertibleToFloat else {
            throw ValidationError("unknown --dtype '\(dtype)': use f32, f16, bf16, f64, f8_e4m3, f8_e5m2 or an integer type")
        }
        return parsed
    }

    private func parsedShardSize() throws -> Int? {
        guard let maxShardSize else { return nil }
        guard let size = ByteSize.parse(maxShardSize) else {
            throw ValidationError("invalid --max-shard-size '\(maxShardSize)': use a size such as 5GB, 500MB or 100KiB")
        }
        return size
    }

    private func parsedGzipLevel() throws -> Int? {
        guard let compression else { return nil }
        let parts = compression.split(separator: ":", maxSplits: 1)
        guard parts.first == "gzip" else {
            throw ValidationError("unknown --compression '\(compression)': use gzip or gzip:LEVEL")
        }
        guard parts.count == 2 else { return 4 }
        guard let level = Int(parts[1]), (1...9).contains(level) else {
            throw ValidationError("invalid gzip level in '\(compression)': use 1 to 9")
        }
        return level
    }
}
