import QPKCore
/// Which errors mean "the input breaks its format's rules", as opposed to trouble (a missing or
/// unreadable file, bad usage, a failed write). The CLI's exit status rests on this split
/// (spec/cli.md): 1 for an invalid input, as `qpk validate` reports it; 2 for trouble.
public enum InvalidInput {
    /// Whether `error` says that a checkpoint is invalid (corrupt, truncated, not a checkpoint,
    /// inconsistent), rather than that something could not be done.
    public static func isInvalidInput(_ error: any Error) -> Bool {
        switch error {
        case is SafetensorsError, is ShardedSafetensorsError:
            return true
        case let error as QPKError:
            // The writer's own errors are programming errors, not input problems.
            return !["tensor_not_announced", "tensor_written_twice", "tensors_not_written", "invalid_storage", "writer_finished"]
                .contains(error.rule)
        case let error as HDF5Error:
            switch error {
            case .notHDF5, .cannotOpen, .notATensor, .datasetTooLarge, .libraryCrashed, .libraryHung: return true
            case let .operationFailed(_, _, _, _, hint): return hint == HDF5Call.readHint
            default: return false
            }
        case let error as GGUFError:
            // A block type qpk cannot decode is a limit of qpk, not a broken file.
            if case .undecodableType = error { return false }
            return true
        case is RuntimeLayoutError:
            return true
        case let error as CheckpointError:
            if case .unknownFormat = error { return true }
            return false
        default:
            return false
        }
    }
}
