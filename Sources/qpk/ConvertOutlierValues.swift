import ArgumentParser
import Convert
import Foundation

extension ConvertCommand {
    /// `qpk convert IN.qpk OUT.qpk --outlier-values FILE`: writes the tuned outlier values back.
    /// Any problem is one line on stderr and exit status 2 (trouble).
    func replaceOutlierValues(from values: String) throws {
        let summary: OutlierValueReplacement.Summary
        do {
            var given = quantization.givenFlags
            for (set, flag) in [
                (dtype != nil, "--dtype"), (!include.isEmpty, "--include"), (!exclude.isEmpty, "--exclude"),
                (maxShardSize != nil, "--max-shard-size"), (compression != nil, "--compression"),
                (outlierMask, "--outlier-mask"), (dryRun, "--dry-run"), (type != nil, "--type"),
                (layout != nil, "--layout"), (allowLossyCast, "--allow-lossy-cast"),
            ] where set {
                given.append(flag)
            }
            if !given.isEmpty {
                throw ValidationError("--outlier-values copies a QPK file and changes only its outlier values: \(given.joined(separator: ", ")) would do nothing; drop it")
            }
            let inputURL = URL(fileURLWithPath: input), outputURL = URL(fileURLWithPath: output)
            if inputURL.standardizedFileURL.path == outputURL.standardizedFileURL.path {
                throw ConversionError.sameFile(outputURL.path)
            }
            summary = try OutlierValueReplacement.replace(
                input: inputURL, output: outputURL, values: URL(fileURLWithPath: values), overwrite: force,
                createdBy: RecordedCommandLine.provenance(CommandLine.arguments))
        } catch let error as ValidationError {
            Terminal.error(error.message)
            throw ExitCode(2)
        } catch {
            Terminal.error(String(describing: error))
            throw ExitCode(2)
        }
        if json {
            try Terminal.printJSON(summary)
        } else {
            print("\(summary.output): \(summary.values) outlier values in \(summary.tensors) tensors replaced from \(URL(fileURLWithPath: summary.valuesFile).lastPathComponent) (\(summary.changed) changed, max change \(String(format: "%.4g", summary.maxAbsChange))); codes, scales and zero-points copied unchanged")
        }
    }
}
