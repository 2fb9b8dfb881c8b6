import Testing
@testable import QSLanguage
