@_exported import Formats
