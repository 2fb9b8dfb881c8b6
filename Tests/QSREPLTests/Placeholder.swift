import Testing
@testable import QSREPL
