import Foundation

/// A small tree of HTML and SVG elements, written as markup that is both HTML5 and well-formed
/// XML (so a test can check it with an XML parser and a browser reads it as HTML).
///
/// Written here rather than with Plot (which the local mirror holds): Plot writes attribute
/// values unescaped and passes `&name;` through text as if it were an entity, so a recipe's own
/// text (quotes, ampersands) could break the document; and it has no SVG vocabulary.
struct Markup {
    enum Content {
        case element(Markup)
        case text(String)
    }

    var name: String
    var attributes: [(String, String)]
    var children: [Content]

    init(_ name: String, _ attributes: [(String, String)] = [], _ children: [Content] = []) {
        self.name = name
        self.attributes = attributes
        self.children = children
    }

    /// An element holding only text.
    init(_ name: String, _ attributes: [(String, String)] = [], text: String) {
        self.init(name, attributes, [.text(text)])
    }

    mutating func add(_ child: Markup) { children.append(.element(child)) }
    mutating func add(text: String) { children.append(.text(text)) }
    mutating func add(_ list: [Markup]) { children += list.map { .element($0) } }

    /// HTML's void elements: written `<br/>`, which both HTML5 and XML read as empty. Every
    /// other element gets a closing tag, since `<div/>` is not empty in HTML.
    private static let void: Set<String> = ["meta", "br", "hr", "img", "link", "col"]

    /// The markup, indented by element for elements that hold other elements only.
    func render(into out: inout String, depth: Int = 0) {
        out += "<" + name
        for (key, value) in attributes { out += " \(key)=\"\(Self.escape(value, quotes: true))\"" }
        if children.isEmpty && Self.void.contains(name) {
            out += "/>"
            return
        }
        out += ">"
        let blockish = !children.isEmpty && children.allSatisfy { if case .element = $0 { true } else { false } }
        for child in children {
            switch child {
            case .element(let element):
                if blockish { out += "\n" + String(repeating: " ", count: min(depth + 1, 12)) }
                element.render(into: &out, depth: depth + 1)
            case .text(let text):
                out += Self.escape(text, quotes: false)
            }
        }
        if blockish { out += "\n" + String(repeating: " ", count: min(depth, 12)) }
        out += "</\(name)>"
    }

    var rendered: String {
        var out = ""
        render(into: &out)
        return out
    }

    /// Text safe in element content or (with `quotes`) a double-quoted attribute; characters
    /// XML does not allow at all (controls other than tab, newline, return) become U+FFFD.
    static func escape(_ text: String, quotes: Bool) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"" where quotes: out += "&quot;"
            case "\n" where quotes: out += "&#10;"
            case "\t", "\n", "\r": out.unicodeScalars.append(scalar)
            default:
                if scalar.value < 0x20 || (0xFFFE...0xFFFF).contains(scalar.value) || (0x7F...0x9F).contains(scalar.value) {
                    out += "\u{FFFD}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }
}
