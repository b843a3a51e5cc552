import Foundation
import Formats
import QPKCore
import Quantize

/// Checks one file (or sharded checkpoint) against its format's rules and collects every problem.
///
/// - safetensors: the reference validator's ten rules (DESIGN §2), first failure wins, as in the
///   reference; sharded checkpoints also check the index against the shards.
/// - QPK: every rule of spec/qpk-format.md §8, including each blob's CRC-32, reported per tensor.
/// - HDF5: signature, open, every dataset readable, no unsupported element type.
/// - GGUF: every structural rule of spec/gguf.md §7, first failure wins.
public enum CheckpointValidator {
    /// A file that could not be checked at all (missing, unreadable): `qpk validate` exits 2.
    public typealias Trouble = FileAccessError

    public static func validate(_ url: URL) throws -> ValidationReport.FileResult {
        try check(url)
    }

    /// The rule of a file that could not be checked at all for a reason other than file access.
    public static let cannotOpenRule = "cannot_open"

    /// Validates the file given as `path` on the command line, reporting it under that name; a
    /// file that cannot be checked at all (missing, unreadable, not a regular file) becomes a
    /// result with that one problem and `checked == false` instead of an error, so every file
    /// given is in the report.
    public static func validate(path: String) -> (result: ValidationReport.FileResult, checked: Bool) {
        do {
            var result = try validate(URL(fileURLWithPath: path))
            result.file = path
            return (result, true)
        } catch {
            let diagnostic = (error as? any CheckpointDiagnosable)?.diagnostic
                ?? CheckpointDiagnostic(file: path, rule: cannotOpenRule, detail: String(describing: error))
            return (ValidationReport.FileResult(file: path, format: nil, problems: [problem(diagnostic)]), false)
        }
    }

    /// A report line from a diagnostic: its tensor, rule, detail and hint, as they are.
    static func problem(_ diagnostic: CheckpointDiagnostic) -> ValidationReport.Problem {
        .init(tensor: diagnostic.tensor, rule: diagnostic.rule, message: diagnostic.detail, hint: diagnostic.hint)
    }

    static func check(_ url: URL) throws -> ValidationReport.FileResult {
        let path = url.path
        let detected: (format: CheckpointFormat, sharded: Bool)
        do {
            detected = try CheckpointFormat.detect(url)
        } catch let error as FileAccessError {
            throw error
        } catch {
            return ValidationReport.FileResult(file: path, format: nil, problems: [
                .init(rule: "unknown_format", message: "not a safetensors, HDF5, QPK or GGUF file (unrecognised magic bytes)",
                      hint: "expected safetensors, HDF5, QPK or GGUF magic bytes"),
            ])
        }
        switch detected.format {
        case .safetensors:
            do {
                let reader: any CheckpointReader = detected.sharded
                    ? try ShardedSafetensorsReader(url: url) : try SafetensorsReader(url: url)
                return .init(file: path, format: "safetensors", tensors: reader.tensors.count)
            } catch let error as SafetensorsError {
                return .init(file: path, format: "safetensors", problems: [problem(error.diagnostic)])
            } catch let error as ShardedSafetensorsError {
                return .init(file: path, format: "safetensors", problems: [problem(error.diagnostic)])
            }
        case .qpk:
            let problems = QPKReader.validate(url: url)
            let count = (try? QPKReader(url: url))?.tensors.count
            return .init(file: path, format: "qpk", tensors: count, problems: problems.map { problem($0.diagnostic) })
        case .gguf:
            do {
                let reader = try GGUFReader(url: url)
                return .init(file: path, format: "gguf", tensors: reader.tensors.count)
            } catch let error as GGUFError {
                return .init(file: path, format: "gguf", problems: [problem(error.diagnostic)])
            }
        case .hdf5:
            let problems = HDF5Reader.validate(url: url)
            let count = problems.isEmpty ? (try? HDF5Reader(url: url))?.tensors.count : nil
            return .init(file: path, format: "hdf5", tensors: count, problems: problems.map { problem($0.diagnostic) })
        }
    }
}
