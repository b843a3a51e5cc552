import Foundation
import Formats
import Model
import QPKCore
import Quantize

/// What calibration reads and how GPTQ or BoA runs (`--method`, `--calibration`, `--samples`,
/// `--seq-len`, `--damp`, `--act-order`).
public struct CalibrationOptions: Sendable {
    /// What the model reads while it is measured.
    public var source: CalibrationSource
    /// Passages used (evenly spread over the text's passages; all of them if there are fewer), or
    /// random sequences drawn.
    public var samples: Int = 128
    /// Tokens per passage, special tokens included (longer passages are cut; random sequences
    /// have exactly this length, or the model's position limit if that is shorter).
    public var sequenceLength: Int = 128
    /// Sequences per forward batch.
    public var batchSize: Int = 16
    public var gptq = GPTQOptions()
    /// The calibrated method: `.gptq`, or `.boa` (attention-aware Hessians for the query, key and
    /// value projections; GPTQ for the rest).
    public var method: QuantizationMethod = .gptq
    /// BoA: the value projection's output-side Hessian is `W_Oᵀ W_O` of the output projection
    /// (the paper's value Hessian) rather than the identity (the authors' code).
    public var valueOutputHessian = false

    /// Options reading the calibration text at `text`, or qpk's built-in text when `nil`.
    public init(text: URL? = nil) { self.init(source: text.map { .text($0) } ?? .builtInText) }

    /// Options reading `source`. Random tokens start from the settings measured best for them
    /// (``SyntheticTokens/sequenceLength`` and ``SyntheticTokens/damp``); text from 128 tokens and
    /// GPTQ's `damp` 0.01.
    public init(source: CalibrationSource) {
        self.source = source
        if case .randomTokens = source {
            sequenceLength = SyntheticTokens.sequenceLength
            gptq.damp = SyntheticTokens.damp
        }
    }
}

/// What the model reads while calibration statistics are measured.
public enum CalibrationSource: Sendable, Equatable {
    /// qpk's built-in calibration text (``CalibrationText/builtIn``).
    case builtInText
    /// A text file of passages separated by blank lines.
    case text(URL)
    /// No data: sequences of the tokenizer's ordinary tokens drawn uniformly at random
    /// (``SyntheticTokens``), from a fixed seed so the same command gives the same file.
    case randomTokens(seed: UInt64)

    /// The source as named in messages and in an imatrix file's `imatrix.datasets`.
    public var name: String {
        switch self {
        case .builtInText: "qpk built-in calibration text"
        case let .text(url): url.lastPathComponent
        case let .randomTokens(seed): "random tokens (seed \(seed))"
        }
    }
}

/// Data-free calibration input: random sequences of a tokenizer's ordinary tokens.
///
/// A model's weights alone do not say which input directions its activations use; running it on
/// tokens drawn uniformly from its vocabulary does, without any text. The embeddings, positions,
/// layer norms and attention of the full-precision model shape these activations as they shape
/// real ones, so their second moments (GPTQ's Hessians, BoA's attention statistics, an imatrix)
/// carry much of what calibration text gives: the same idea as ZeroQ's synthetic inputs (Cai et
/// al. 2020, arXiv 2001.00281) and the generated data of LLM-QAT (Liu et al. 2023, arXiv
/// 2305.17888), here in its simplest form. bench/quality measures how close it comes.
public enum SyntheticTokens {
    /// The default length of a random sequence, special tokens included: shorter than text's 128,
    /// since every random token is as unexpected as the next and long random sequences only
    /// flatten the attention (bench/quality: 0.9839 at 128 tokens, 0.9864 at 32, BoA recipe,
    /// damp 0.1, MiniLM-L6 at 4.5 bpw).
    public static let sequenceLength = 32
    /// The default GPTQ/BoA dampening: random inputs estimate the Hessian more coarsely than text,
    /// and a stronger pull towards the plain weight error helped (0.9850 at 0.01, 0.9864 at 0.1,
    /// 32 tokens, as above).
    public static let damp = 0.1

    /// `count` sequences of `length` ids each (special tokens included, as the post-processor
    /// adds them), the rest drawn uniformly from `tokenizer`'s ordinary tokens by SplitMix64
    /// seeded with `seed`.
    /// - Throws: ``CalibrationError/invalidSetting(_:)`` when the tokenizer has no ordinary token
    ///   or `length` leaves no room beside the special tokens.
    public static func sequences(tokenizer: Tokenizer, count: Int, length: Int, seed: UInt64) throws -> [[Int32]] {
        let ordinary = tokenizer.ordinaryTokenIDs()
        guard !ordinary.isEmpty else {
            throw CalibrationError.invalidSetting("\(tokenizer.path): the vocabulary has no ordinary token to draw random calibration sequences from; give calibration text with --calibration")
        }
        let drawn = length - tokenizer.specialTokenCount
        guard drawn >= 1 else {
            throw CalibrationError.invalidSetting("--seq-len \(length) leaves no room for a token beside the \(tokenizer.specialTokenCount) special tokens; use at least \(tokenizer.specialTokenCount + 1)")
        }
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in
            tokenizer.addingSpecialTokens((0..<drawn).map { _ in ordinary[Int(generator.next() % UInt64(ordinary.count))] })
        }
    }
}

/// Problems particular to calibrated conversion.
public enum CalibrationError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The source is a weights file without config.json and tokenizer.json beside it.
    case needsModelFolder(String)
    /// Calibrated quantization writes QPK only.
    case needsQPKOutput(String)
    /// The calibration text holds no passage.
    case emptyText(String)
    /// A setting out of range.
    case invalidSetting(String)

    public var description: String {
        switch self {
        case let .needsModelFolder(path):
            "\(path): calibrated quantization (--method gptq, --calibration) runs the model, so it needs a model folder with config.json and tokenizer.json beside the weights; pass the folder"
        case let .needsQPKOutput(path):
            "\(path): calibrated quantization writes QPK; give a .qpk output"
        case let .emptyText(path):
            "\(path): the calibration text holds no passage; give a text file of paragraphs separated by blank lines"
        case let .invalidSetting(message):
            message
        }
    }
}

/// The calibration passages: paragraphs of a text file, separated by blank lines.
public enum CalibrationText {
    /// qpk's built-in calibration text: 811 passages from the fortune files of Debian's
    /// `fortunes-min` (BSD licence), written by fixtures/gen_calibration.py. It shares nothing
    /// with the evaluation sentences of bench/quality.
    public static var builtIn: String { String(decoding: PackageResources.calibration_txt, as: UTF8.self) }

    /// The paragraphs of `text` (blank-line separated), each one's whitespace collapsed.
    public static func passages(_ text: String) -> [String] {
        var result: [String] = []
        var current: [Substring] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let words = line.split(whereSeparator: \.isWhitespace)
            if words.isEmpty {
                if !current.isEmpty { result.append(current.joined(separator: " ")) }
                current = []
            } else {
                current += words
            }
        }
        if !current.isEmpty { result.append(current.joined(separator: " ")) }
        return result
    }

    /// `count` of `passages`, evenly spread (all of them when there are no more than `count`).
    public static func spread(_ passages: [String], count: Int) -> [String] {
        guard passages.count > count, count > 0 else { return passages }
        return (0..<count).map { passages[$0 * passages.count / count] }
    }
}

/// `qpk convert MODEL_DIR out.qpk --method gptq|boa`: text in, calibrated QPK out.
///
/// The conversion is planned as the data-free one is (``ConversionPlanner``: which tensors are
/// quantized and with which ``QuantizationDecision``). Then the model runs block by block through
/// ``SequentialCalibration`` on the calibration passages: each planned weight of a block's linear
/// layers is quantized by ``GPTQ`` with the Hessian of its inputs (with ``BoA``, the query, key and
/// value projections by ``BoA`` with the block's attention-aware Hessians, spec/quantization.md
/// §12), and the block continues with the quantized weights, so later blocks are calibrated on what they will see. Planned tensors that
/// are not a block's linear weight (embeddings, say) are quantized data-free, and everything else
/// is copied or cast as planned. The writer receives the tensors in the data-free converter's
/// order, so the file has the same layout.
public enum CalibratedConversion {
    /// Progress: blocks done of the total.
    public typealias Progress = @Sendable (_ done: Int, _ total: Int, _ detail: String) -> Void

    /// The model folder of `url`: the folder itself, or the folder of a weights file that has
    /// config.json and tokenizer.json beside it.
    /// - Throws: ``CalibrationError/needsModelFolder(_:)``.
    public static func modelFolder(of url: URL) throws -> URL {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory)
        let folder = exists && isDirectory.boolValue ? url : url.deletingLastPathComponent()
        let manager = FileManager.default
        guard manager.fileExists(atPath: folder.appendingPathComponent("config.json").path),
              manager.fileExists(atPath: folder.appendingPathComponent("tokenizer.json").path)
        else { throw CalibrationError.needsModelFolder(url.path) }
        return folder
    }

    /// The calibration batches: the chosen passages tokenized (special tokens added, cut to the
    /// sequence length), `batchSize` sequences per batch.
    public static func batches(folder: ModelFolder, options: CalibrationOptions) throws -> [TokenBatch] {
        guard options.samples >= 1 else { throw CalibrationError.invalidSetting("--samples must be at least 1") }
        guard options.sequenceLength >= 2 else { throw CalibrationError.invalidSetting("--seq-len must be at least 2") }
        guard options.gptq.damp > 0, options.gptq.damp.isFinite else {
            throw CalibrationError.invalidSetting("--damp must be a positive number such as 0.01")
        }
        let maxLength = min(options.sequenceLength, folder.config.maxPositions - folder.config.positionOffset)
        let sequences: [[Int32]]
        switch options.source {
        case let .randomTokens(seed):
            guard options.samples <= 1_000_000 else { throw CalibrationError.invalidSetting("--samples must be at most 1000000") }
            sequences = try SyntheticTokens.sequences(tokenizer: folder.tokenizer, count: options.samples, length: maxLength, seed: seed)
        case .builtInText:
            sequences = try passageSequences(CalibrationText.builtIn, name: "built-in calibration text", folder: folder,
                                             count: options.samples, maxLength: maxLength)
        case let .text(url):
            guard let data = FileManager.default.contents(atPath: url.path) else {
                throw CalibrationError.invalidSetting("\(url.path): cannot read the calibration text; check the --calibration path")
            }
            guard let text = String(data: data, encoding: .utf8) else {
                throw CalibrationError.invalidSetting("\(url.path): the calibration text is not UTF-8")
            }
            sequences = try passageSequences(text, name: url.path, folder: folder, count: options.samples, maxLength: maxLength)
        }
        let size = max(1, options.batchSize)
        return stride(from: 0, to: sequences.count, by: size).map {
            TokenBatch(Array(sequences[$0..<min($0 + size, sequences.count)]), padID: folder.tokenizer.padID)
        }
    }

    /// `count` passages of `text`, evenly spread, tokenized with their special tokens and cut to
    /// `maxLength`.
    /// - Throws: ``CalibrationError/emptyText(_:)`` naming `name` when the text holds no passage.
    static func passageSequences(_ text: String, name: String, folder: ModelFolder, count: Int, maxLength: Int) throws -> [[Int32]] {
        let chosen = CalibrationText.spread(CalibrationText.passages(text), count: count)
        guard !chosen.isEmpty else { throw CalibrationError.emptyText(name) }
        return chosen.map { folder.tokenizer.encode($0, maxLength: maxLength) }.filter { !$0.isEmpty }
    }

    /// Quantizes the planned weights of `plan` with GPTQ (or BoA) on `folder`'s model, writes the output
    /// and reports what was done.
    public static func run(
        plan: ConversionPlan, options: ConversionOptions, reader: any CheckpointReader, folder: ModelFolder,
        calibration: CalibrationOptions, progress: Progress? = nil
    ) throws -> ConversionSummary {
        let started = Date()
        guard plan.target.format == .qpk else { throw CalibrationError.needsQPKOutput(plan.destination.path) }
        // GPTQ and BoA quantize the weights in their own basis: no transform.
        for index in plan.tensors.indices where plan.decision(at: index)?.transform != nil {
            throw GPTQError.rotated(tensor: plan.tensors[index].source.name)
        }
        let batches = try batches(folder: folder, options: calibration)
        let planned = Dictionary(plan.tensors.enumerated().compactMap { index, entry -> (String, Int)? in
            if case .quantize = entry.action { return (entry.source.name, index) }
            return nil
        }, uniquingKeysWith: { first, _ in first })
        var calibrated: [Int: QuantizedTensor] = [:]
        var energies: [Int: Double] = [:]
        let model = try folder.loadModel()
        let boa = calibration.method == .boa
        let quantizeBlock = { (linears: [Linear], observer: HessianObserver, replace: (String, [Float]) -> Void) throws in
            let attention = observer.attention.values.first
            for linear in linears {
                guard let index = planned[linear.name + ".weight"], var decision = plan.decision(at: index),
                      let statistics = observer.statistics(of: linear.name)
                else { continue }
                let hessians = boa ? attention.flatMap { attention in
                    Self.attentionAwareHessians(
                        of: linear.name, attention: attention, inputHessian: statistics.hessian, linears: linears,
                        valueOutputHessian: calibration.valueOutputHessian)
                } : nil
                decision.method = hessians == nil ? .gptq : .boa
                // The group fits are weighted by the measured E[x²], not the LayerNorm estimate.
                if decision.importance != .none { decision.importance = .calibration }
                let info = plan.tensors[index].source
                let importance = decision.importance == .none ? nil : statistics.meanSquares.map(Float.init)
                let quantized = try linear.weight.withUnsafeBufferPointer {
                    if let hessians {
                        try BoA.quantize($0, info: info, hessians: hessians, decision: decision,
                                         options: calibration.gptq, columnImportance: importance)
                    } else {
                        try GPTQ.quantize($0, info: info, hessian: statistics.hessian, decision: decision,
                                          options: calibration.gptq, columnImportance: importance)
                    }
                }
                calibrated[index] = quantized
                energies[index] = linear.weight.reduce(0.0) { $0 + Double($1) * Double($1) }
                replace(linear.name, try Dequantizer.floats(.quantized(quantized), info: info))
            }
        }
        switch model {
        case var bert as BertEncoder:
            try calibrate(&bert, batches: batches, attention: boa, progress: progress, quantizeBlock)
        case var llama as LlamaDecoder:
            try calibrate(&llama, batches: batches, attention: boa, progress: progress, quantizeBlock)
        default:
            throw CalibrationError.invalidSetting("\(folder.url.path): this model cannot run block by block")
        }
        return try write(plan: plan, options: options, reader: reader, calibrated: calibrated, energies: energies, started: started)
    }

    /// BoA's Hessians for the linear layer `name` if it is the query, key or value projection of
    /// the block whose attention statistics are `attention` (nil for any other layer, which GPTQ
    /// quantizes): spec/quantization.md §12.
    static func attentionAwareHessians(
        of name: String, attention: AttentionStatistics, inputHessian: [Double], linears: [Linear],
        valueOutputHessian: Bool
    ) -> AttentionAwareHessians? {
        switch name {
        case attention.query:
            return AttentionAwareHessians(heads: attention.heads, columns: [inputHessian], rows: attention.queryRowHessians)
        case attention.key:
            return AttentionAwareHessians(heads: attention.kvHeads, columns: [inputHessian], rows: attention.keyRowHessians)
        case attention.value:
            let output = valueOutputHessian ? linears.first { $0.name == attention.output } : nil
            return AttentionAwareHessians(
                heads: attention.kvHeads, columns: attention.valueColumnHessians,
                rows: output.map { attention.valueRowHessians(outputWeight: $0.weight) })
        default:
            return nil
        }
    }

    static func calibrate<M: BlockwiseModel>(
        _ model: inout M, batches: [TokenBatch], attention: Bool, progress: Progress?,
        _ quantizeBlock: ([Linear], HessianObserver, (String, [Float]) -> Void) throws -> Void
    ) throws {
        let total = model.blocks.count
        progress?(0, total, "calibrating")
        var done = 0
        try SequentialCalibration.run(&model, batches: batches, attention: attention) { block, observer in
            try quantizeBlock(block.linears, observer) { name, weight in _ = block.replaceWeight(of: name, with: weight) }
            done += 1
            progress?(done, total, "block \(block.index)")
        }
    }

    /// Writes every planned tensor in the converter's order: calibrated ones as GPTQ made them, the
    /// rest as ``Converter`` transforms them.
    static func write(
        plan: ConversionPlan, options: ConversionOptions, reader: any CheckpointReader,
        calibrated: [Int: QuantizedTensor], energies: [Int: Double], started: Date
    ) throws -> ConversionSummary {
        let writer = try WriterFactory.makeWriter(plan: plan, reader: reader, options: options)
        var results = [TensorResult?](repeating: nil, count: plan.tensors.count)
        for index in Converter.processingOrder(plan.tensors) {
            let entry = plan.tensors[index]
            if let quantized = calibrated[index] {
                var result = TensorResult(planned: entry)
                let (rows, columns) = quantized.matrixShape
                result.decision = quantized.decision
                result.bytes = quantized.storedByteCount
                result.outliers = quantized.outliers.map { $0.parameterCount(rows: rows, columns: columns) } ?? 0
                result.sqnrDB = quantized.error?.sqnrDB
                result.signalEnergy = energies[index]
                try writer.write(entry.output, storage: .quantized(quantized))
                results[index] = result
            } else {
                let (storage, result) = try Converter.transform(entry, reader: reader)
                try writer.write(entry.output, storage: storage)
                results[index] = result
            }
        }
        try writer.finish()
        return ConversionSummary(
            plan: plan, options: options, results: results.map { $0! }, dryRun: false,
            outputBytes: Converter.sizeOnDisk(plan.destination), seconds: Date().timeIntervalSince(started))
    }
}
