@_exported import Formats
@_exported import Quantize
