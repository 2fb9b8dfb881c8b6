import QSEngine
import QSLanguage

/// The state a script or the REPL works on: the loaded model, calibration data, snapshots and
/// settings. One session lives as long as a `qs run` or a REPL.
package final class Session {
    package init() {}
}
