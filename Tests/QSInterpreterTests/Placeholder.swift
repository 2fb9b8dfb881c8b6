import Testing
@testable import QSInterpreter
