import ArgumentParser

@main
struct Qpk: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qpk",
        abstract: "Convert, quantize, inspect, diff and validate neural-network checkpoints.",
        version: "0.1.0",
        subcommands: [])
}
