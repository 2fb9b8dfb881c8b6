import CEditLine
import QSInterpreter

/// The REPL's line editor: the one place that talks to libedit.
package final class LineEditor {
    package init() {}
}
