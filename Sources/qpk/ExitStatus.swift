import Formats
import Inspect
import Quantize
import QPKCore
import Convert

/// qpk's one exit-status rule, the same for every command (as diff(1); spec/cli.md):
/// 0 success, valid or equal; 1 invalid or different; 2 trouble (bad usage, a missing or
/// unreadable input, an output that cannot be written).
enum ExitStatus {
    static let success: Int32 = 0
    static let invalidOrDifferent: Int32 = 1
    static let trouble: Int32 = 2

    /// The status for an error a command threw: 1 when it says an input checkpoint is invalid
    /// (the rule `qpk validate` applies), 2 for everything else.
    static func code(for error: any Error) -> Int32 {
        switch error {
        case is InspectError, is Dequantizer.Failure: invalidOrDifferent
        default: InvalidInput.isInvalidInput(error) ? invalidOrDifferent : trouble
        }
    }
}
