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
    public struct Trouble: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    public static func validate(_ url: URL) throws -> ValidationReport.FileResult {
        var result = try check(url)
        result.problems = result.problems.map { bare($0, path: url.path) }
        return result
    }

    /// The report already prints the file, the tensor and the rule before each message: remove
    /// them from messages that repeat them (format errors are written to stand alone), and drop
    /// a hint the message already contains.
    static func bare(_ problem: ValidationReport.Problem, path: String) -> ValidationReport.Problem {
        var message = problem.message.replacingOccurrences(of: "\(path): ", with: "")
        var prefixes = ["\(problem.rule): ", "[\(problem.rule)] "]
        if let tensor = problem.tensor { prefixes += ["tensor '\(tensor)': ", "dataset '\(tensor)': "] }
        var changed = true
        while changed {
            changed = false
            for prefix in prefixes where message.hasPrefix(prefix) {
                message.removeFirst(prefix.count)
                changed = true
            }
        }
        var result = problem
        result.message = message
        if let hint = problem.hint, message.contains(hint) { result.hint = nil }
        return result
    }

    static func check(_ url: URL) throws -> ValidationReport.FileResult {
        let path = url.path
        let detected: (format: CheckpointFormat, sharded: Bool)
        do {
            detected = try CheckpointFormat.detect(url)
        } catch let error as FileAccessError {
            throw Trouble(description: error.description)
        } catch {
            return ValidationReport.FileResult(file: path, format: nil, problems: [
                .init(rule: "UnknownFormat", message: String(describing: error),
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
                return .init(file: path, format: "safetensors", problems: [
                    .init(tensor: error.tensor, rule: error.ruleName, message: error.description),
                ])
            } catch let error as ShardedSafetensorsError {
                return .init(file: path, format: "safetensors", problems: [
                    .init(tensor: error.tensor, rule: error.ruleName, message: error.description),
                ])
            } catch let error as FileAccessError {
                throw Trouble(description: error.description)
            }
        case .qpk:
            let problems = QPKReader.validate(url: url)
            let count = (try? QPKReader(url: url))?.tensors.count
            return .init(file: path, format: "qpk", tensors: count, problems: problems.map {
                .init(tensor: $0.tensor, rule: $0.rule, message: $0.message)
            })
        case .gguf:
            do {
                let reader = try GGUFReader(url: url)
                return .init(file: path, format: "gguf", tensors: reader.tensors.count)
            } catch let error as GGUFError {
                return .init(file: path, format: "gguf", problems: [
                    .init(tensor: error.tensor, rule: error.ruleName, message: error.description),
                ])
            } catch let error as FileAccessError {
                throw Trouble(description: error.description)
            }
        case .hdf5:
            let problems = HDF5Reader.validate(url: url)
            let count = problems.isEmpty ? (try? HDF5Reader(url: url))?.tensors.count : nil
            return .init(file: path, format: "hdf5", tensors: count, problems: problems.map {
                .init(tensor: $0.dataset, rule: $0.rule.rawValue, message: $0.message, hint: $0.hint)
            })
        }
    }
}
