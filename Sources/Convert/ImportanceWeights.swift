import Formats
import Model
import QPKCore
import Quantize

/// The per-column error weights a quantized tensor gets, from whichever source its decision's
/// ``ImportanceSource`` names (spec/quantization.md §10): none, the data-free estimate from the
/// normalisation layers (``ActivationImportance``), or measured statistics (an
/// ``ImportanceMatrix`` from `qpk calibrate` or llama.cpp's `llama-imatrix`, `--imatrix`).
public enum ImportanceWeights {
    /// Why an importance matrix cannot weight a tensor it has an entry for.
    public enum Failure: Error, CustomStringConvertible, Sendable, Equatable {
        case widthMismatch(tensor: String, entryColumns: Int, tensorColumns: Int)

        public var description: String {
            switch self {
            case let .widthMismatch(tensor, entryColumns, tensorColumns):
                "tensor '\(tensor)': the importance matrix entry has \(entryColumns) columns but the tensor's inputs are \(tensorColumns) wide; was the imatrix computed for another model?"
            }
        }
    }

    /// The entry of `matrix` for the weight `name`: under that name, or under its llama.cpp name
    /// (``LlamaCppArchitecture/llamaCppName(of:)``), as llama.cpp's tools and `qpk calibrate` key it.
    public static func entry(for name: String, in matrix: ImportanceMatrix) -> ImportanceMatrix.Entry? {
        matrix.entries[name] ?? LlamaCppArchitecture.llamaCppName(of: name).flatMap { matrix.entries[$0] }
    }

    /// `decision` for `info`, with importance `calibration` when `matrix` has an entry for it
    /// (unless the recipe asked for no importance at all).
    /// - Throws: ``Failure/widthMismatch(tensor:entryColumns:tensorColumns:)``.
    public static func decision(
        _ decision: QuantizationDecision, for info: TensorInfo, matrix: ImportanceMatrix?
    ) throws -> QuantizationDecision {
        guard let matrix, decision.importance != .none, let entry = entry(for: info.name, in: matrix) else { return decision }
        let columns = decision.axis.matrixShape(of: info.shape).columns
        guard entry.columns == columns else {
            throw Failure.widthMismatch(tensor: info.name, entryColumns: entry.columns, tensorColumns: columns)
        }
        var result = decision
        result.importance = .calibration
        return result
    }

    /// The weights of `info` under `decision`, or `nil` (unweighted).
    public static func columnWeights(
        for info: TensorInfo, decision: QuantizationDecision, reader: any CheckpointReader, matrix: ImportanceMatrix?
    ) -> [Float]? {
        switch decision.importance {
        case .none:
            return nil
        case .norm:
            return ActivationImportance.columnWeights(for: info, decision: decision, reader: reader)
        case .calibration:
            guard let matrix, let entry = entry(for: info.name, in: matrix) else { return nil }
            return ColumnImportance.weights(secondMoments: entry.meanSquares.map(Double.init), exponent: ColumnImportance.measuredExponent)
        }
    }
}
