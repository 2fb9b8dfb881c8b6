import Foundation
import QSEngine
import QSLanguage

/// Runs scripts for the command line: diagnostics rendered to standard error, output to
/// standard output, and the exit status the command line promises (0 success, 1 a script
/// error or failed assert, 2 a usage error).
package struct ScriptRunner {
    package var session: Session
    /// Colour diagnostics (standard error is a terminal and NO_COLOR is unset).
    package var color: Bool

    package init(json: Bool = false) {
        let session = Session(output: { text in
            FileHandle.standardOutput.write(Data(text.utf8))
        }, libraryDirectory: ScriptRunner.findLibrary())
        if json {
            // Results go out as JSON lines; what commands print goes to standard error.
            session.output = { FileHandle.standardError.write(Data($0.utf8)) }
            session.onCommandResult = { name, value in
                guard case .record = value else { return }
                FileHandle.standardOutput.write(Data((StrictJSON.object([.init("command", .string(name)), .init("result", value.jsonValue)]).serialized() + "\n").utf8))
            }
        }
        let color = isatty(2) != 0 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
        // Printed output goes to standard error with --json, else to standard output.
        session.colour = isatty(json ? 2 : 1) != 0 && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
        // Warnings and notes of running commands go to standard error, rendered like errors.
        session.report = { diagnostic in
            FileHandle.standardError.write(Data(DiagnosticRenderer(color: color).render(diagnostic).utf8))
        }
        self.session = session
        self.color = color
    }

    /// `stdlib/`: $QS_STDLIB, or the first `stdlib` folder found beside the executable or in a
    /// folder above it (the repository when run from a build folder).
    package static func findLibrary() -> String? {
        if let path = ProcessInfo.processInfo.environment["QS_STDLIB"] { return path }
        var folder = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0 ..< 5 {
            let candidate = folder.appendingPathComponent("stdlib")
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), isDirectory.boolValue {
                return candidate.path
            }
            folder = folder.deletingLastPathComponent()
        }
        return nil
    }

    /// Defines `name=value` pairs before a run: a setting when the name is one, else a variable
    /// (a number when the value reads as one, else a string).
    package func define(_ assignments: [String]) throws -> Int32? {
        for assignment in assignments {
            guard let equals = assignment.firstIndex(of: "="), equals != assignment.startIndex else {
                report("qs: error: --set expects name=value, got '\(assignment)'")
                return 2
            }
            let name = String(assignment[..<equals])
            let text = String(assignment[assignment.index(after: equals)...])
            let value: Value = Double(text).map { .number($0) } ?? .string(text)
            if session.settings.specs.contains(where: { $0.name == name }) {
                do {
                    try session.setSetting(name, value)
                } catch {
                    report("qs: error: --set \(name): \(error)")
                    return 2
                }
            } else {
                session.globals.define(name, value)
            }
        }
        return nil
    }

    /// Runs a source; returns the exit status.
    package func run(_ file: SourceFile) -> Int32 {
        do {
            _ = try session.run(file, checkFirst: true)
            return 0
        } catch {
            report(DiagnosticRenderer(color: color).render(error.diagnostics))
            return 1
        }
    }

    /// Runs a file by path; returns the exit status.
    package func runFile(_ path: String) -> Int32 {
        do {
            return run(SourceFile(name: path, bytes: try Session.readScript(path)))
        } catch {
            report("qs: error: \(error)")
            return 2
        }
    }

    /// `qs check`: every syntax and binding error of each file; returns the exit status.
    package func check(_ paths: [String]) -> Int32 {
        var failed = false
        for path in paths {
            let bytes: [UInt8]
            do {
                bytes = try Session.readScript(path)
            } catch {
                report("qs: error: \(error)")
                return 2
            }
            let problems = session.check(SourceFile(name: path, bytes: bytes))
            if !problems.isEmpty {
                failed = true
                report(DiagnosticRenderer(color: color).render(problems))
            }
        }
        return failed ? 1 : 0
    }

    func report(_ text: String) {
        FileHandle.standardError.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
    }
}
