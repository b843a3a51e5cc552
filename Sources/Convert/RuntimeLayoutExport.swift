import Foundation
import Formats
import QPKCore
import Quantize

/// Planning for `--layout mlx|gptq`: which weights become the layout's packed tensors, with what
/// decision (spec/runtime-layouts.md).
///
/// Selected are the tensors the default rule (``TensorSelection``, `--include`/`--exclude`)
/// chooses that are 2-D `*.weight` matrices whose input width the group divides; for GPTQ,
/// whose runtimes convert only linear layers, names containing `embed` are left out by default.
/// Each gets the recipe's bits, scale search and importance with the layout's group size, groups
/// along the input, no outliers (neither layout can hold them) and, for GPTQ, integer
/// zero-points. Everything else is copied and listed in the summary.
enum RuntimeLayoutPlanning {
    /// The group size a layout uses when `--group-size` is not given.
    static func defaultGroupSize(_ layout: RuntimeLayout) -> Int {
        switch layout {
        case .mlx: 64
        case .gptq: 128
        }
    }

    static func plan(
        reader: any CheckpointReader, destination: URL, target: OutputTarget, options: ConversionOptions,
        layout: RuntimeLayout
    ) throws -> ConversionPlan {
        let recipe = options.recipe
        let groupSize = recipe.groupSize ?? defaultGroupSize(layout)
        guard layout.supportedGroupSizes.contains(groupSize) else {
            throw ConversionError.layoutGroupSize(layout, groupSize)
        }
        guard layout.supportedBits.contains(recipe.bits) else { throw ConversionError.layoutBits(layout, recipe.bits) }
        // The layouts store `(q − z)·s` on a uniform grid: start from QuantizationRecipe.uniform(bits:).
        if recipe.codebook != nil { throw ConversionError.layoutFeature(layout, "a codebook") }
        if recipe.scaleCodes != nil { throw ConversionError.layoutFeature(layout, "log-coded scales") }
        if recipe.transform != nil { throw ConversionError.layoutFeature(layout, "a transform") }
        if WeightLayout.of(reader) == .inputMajor { throw ConversionError.layoutNeedsOutputMajor(layout) }
        var decision = recipe.decision(axis: .last)
        decision.groupSize = groupSize
        decision.outlierBudget = 0
        decision.maxBitsPerWeight = nil
        decision.zeroPoints = layout == .gptq ? .gptqInteger : .float16
        var entries: [PlannedTensor] = []
        for info in reader.tensors where !options.drop.contains(where: { $0.matches(info.name) }) {
            if reader.isQuantized(info) { throw ConversionError.layoutFromQuantized(info.name) }
            let chosen = TensorSelection.shouldQuantize(info, include: options.include, exclude: options.exclude)
                && (layout != .gptq || !options.include.isEmpty || !info.name.lowercased().contains("embed"))
            if chosen, RuntimeLayoutEncoding.check(info, layout: layout, bits: decision.bits, groupSize: groupSize) == nil {
                let bytes = RuntimeLayoutEncoding.parts(of: info, layout: layout, bits: decision.bits, groupSize: groupSize)
                    .reduce(0) { $0 + $1.byteCount }
                entries.append(PlannedTensor(source: info, output: info, action: .quantize(decision), estimatedBytes: bytes))
            } else {
                entries.append(try ConversionPlanner.keepOrCast(info, dtype: options.dtype))
            }
        }
        return ConversionPlan(
            source: reader.url, sourceFormat: reader.format, destination: destination, target: target,
            tensors: entries)
    }
}

/// Writes a Hugging Face model folder in a runtime layout: `model.safetensors` with each
/// quantized weight expanded into the layout's tensors, `config.json` carrying the layout's
/// quantization description, GPTQ's `quantize_config.json`, and a copy of every other file of the
/// source folder (tokenizer, vocabulary, …).
///
/// Only the files it writes are ever replaced (`--force`); anything else in the destination
/// folder stays. Each file appears complete or not at all.
final class RuntimeLayoutWriter: CheckpointWriter {
    static let weightsFile = "model.safetensors"

    private let folder: URL
    private let layout: RuntimeLayout
    private let inner: SafetensorsWriter
    private let decisions: [String: QuantizationDecision]
    private let unquantizedMatrices: [String]
    private let sourceFolder: URL?
    private let overwrite: Bool

    init(plan: ConversionPlan, reader: any CheckpointReader, layout: RuntimeLayout, overwrite: Bool) throws {
        folder = plan.destination
        self.layout = layout
        self.overwrite = overwrite
        var decisions: [String: QuantizationDecision] = [:]
        var outputs: [TensorInfo] = []
        var unquantized: [String] = []
        for (index, entry) in plan.tensors.enumerated() {
            if let decision = plan.decision(at: index) {
                decisions[entry.source.name] = decision
                outputs += RuntimeLayoutEncoding.parts(
                    of: entry.source, layout: layout, bits: decision.bits, groupSize: decision.groupSize ?? 0)
            } else {
                outputs.append(entry.output)
                if entry.output.shape.count == 2, let path = RuntimeLayout.modulePath(of: entry.output.name) {
                    unquantized.append(path)
                }
            }
        }
        self.decisions = decisions
        unquantizedMatrices = unquantized
        var isDirectory: ObjCBool = false
        sourceFolder = FileManager.default.fileExists(atPath: reader.url.path, isDirectory: &isDirectory)
            && isDirectory.boolValue ? reader.url : nil
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for name in try Self.filesWritten(layout: layout, sourceFolder: sourceFolder) {
            let path = folder.appendingPathComponent(name).path
            if !overwrite, FileManager.default.fileExists(atPath: path) { throw FileAccessError.alreadyExists(path) }
        }
        var metadata = reader.metadata
        metadata["format"] = "pt"
        inner = try SafetensorsWriter(
            url: folder.appendingPathComponent(Self.weightsFile), tensors: outputs, metadata: metadata,
            overwrite: overwrite)
    }

    func write(_ info: TensorInfo, storage: TensorStorage) throws {
        switch storage {
        case let .quantized(tensor):
            for part in RuntimeLayoutEncoding.encode(tensor, layout: layout) {
                try inner.write(part.info, storage: .dense(TensorBytes(copying: part.bytes)))
            }
        case .dense:
            try inner.write(info, storage: storage)
        }
    }

    func finish() throws {
        try inner.finish()
        let config = try sourceFolder.map { try Self.readConfig(in: $0) } ?? [:]
        try Self.writeJSON(updatedConfig(config), to: folder.appendingPathComponent("config.json"))
        if layout == .gptq {
            try Self.writeJSON(gptqDescription(), to: folder.appendingPathComponent("quantize_config.json"))
        }
        if let sourceFolder {
            for name in try Self.companionFiles(in: sourceFolder) {
                try Self.copy(sourceFolder.appendingPathComponent(name), to: folder.appendingPathComponent(name))
            }
        }
    }

    /// The bits and group size every quantized weight shares.
    private var shared: (bits: Int, groupSize: Int) {
        let any = decisions.values.first
        return (any?.bits ?? 4, any?.groupSize ?? RuntimeLayoutPlanning.defaultGroupSize(layout))
    }

    private func updatedConfig(_ config: [String: Any]) -> [String: Any] {
        var config = config
        switch layout {
        case .mlx:
            // mlx_lm reads `quantization` (and newer versions `quantization_config`); a module
            // mapped to `false` stays a plain float layer.
            var description: [String: Any] = ["group_size": shared.groupSize, "bits": shared.bits, "mode": "affine"]
            for path in unquantizedMatrices { description[path] = false }
            config["quantization"] = description
            config["quantization_config"] = description
        case .gptq:
            config["quantization_config"] = gptqDescription()
        }
        return config
    }

    private func gptqDescription() -> [String: Any] {
        [
            "quant_method": "gptq", "bits": shared.bits, "group_size": shared.groupSize, "desc_act": false,
            "sym": false, "true_sequential": true, "static_groups": false, "checkpoint_format": "gptq",
            "damp_percent": 0.01, "modules_not_quantized": unquantizedMatrices,
        ]
    }

    /// The file names this writer creates or replaces in the destination.
    static func filesWritten(layout: RuntimeLayout, sourceFolder: URL?) throws -> [String] {
        var names = [weightsFile, "config.json"]
        if layout == .gptq { names.append("quantize_config.json") }
        if let sourceFolder { names += try companionFiles(in: sourceFolder) }
        return names
    }

    /// Every file of a model folder other than its weights and its config, relative paths, sorted.
    static func companionFiles(in folder: URL) throws -> [String] {
        let base = folder.standardizedFileURL.path
        guard let walker = FileManager.default.enumerator(
            at: folder, includingPropertiesForKeys: [.isRegularFileKey], options: [.skipsHiddenFiles]) else { return [] }
        var names: [String] = []
        for case let url as URL in walker {
            guard (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true else { continue }
            let relative = String(url.standardizedFileURL.path.dropFirst(base.count + 1))
            let name = url.lastPathComponent
            if name.hasSuffix(".safetensors") || name.hasSuffix(".safetensors.index.json") || relative == "config.json"
                || relative == "quantize_config.json" || name.hasSuffix(".bin") || name.hasSuffix(".pt") { continue }
            names.append(relative)
        }
        return names.sorted()
    }

    static func readConfig(in folder: URL) throws -> [String: Any] {
        let url = folder.appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: url.path) else { return [:] }
        let data = try Data(contentsOf: url)
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ConversionError.invalidConfig(url.path)
        }
        return object
    }

    static func writeJSON(_ object: [String: Any], to url: URL) throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        try writeAtomically(data, to: url)
    }

    static func copy(_ source: URL, to destination: URL) throws {
        try FileManager.default.createDirectory(
            at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
        try writeAtomically(try Data(contentsOf: source, options: .alwaysMapped), to: destination)
    }

    /// Writes through a temporary file renamed into place, replacing only `url`.
    static func writeAtomically(_ data: Data, to url: URL) throws {
        let output = try AtomicOutput(destination: url, overwrite: true)
        try data.withUnsafeBytes { try output.append($0) }
        try output.commit()
    }
}
