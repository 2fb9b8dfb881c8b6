import ArgumentParser
import QSEngine
import QSInterpreter
import QSLanguage
import QSREPL

@main
struct QS: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qs",
        abstract: "A model-compression workbench for Hugging Face transformer models.",
        version: "qs 0.1.0",
        subcommands: []
    )
}
