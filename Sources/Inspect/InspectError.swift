import QPKCore
import Formats
import Quantize

/// Errors of inspect and diff that are not the reader's own.
public enum InspectError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A tensor's stored data has no numeric reading: (file, tensor, reason).
    case unreadableTensor(String, String, String)

    public var description: String {
        switch self {
        case let .unreadableTensor(file, tensor, reason):
            "\(file): tensor '\(tensor)': cannot be read as numbers: \(reason) (run 'qpk validate \(file)' for details)"
        }
    }

    /// Runs `body`, turning a ``Dequantizer/Failure`` into ``unreadableTensor(_:_:_:)`` naming the file.
    static func naming<T>(_ file: String, _ tensor: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let failure as Dequantizer.Failure {
            let reason: String = switch failure {
            case let .notConvertible(_, dtype): "dtype \(dtype.rawValue) has no float view"
            case let .inconsistent(_, detail): detail
            }
            throw InspectError.unreadableTensor(file, tensor, reason)
        }
    }
}
