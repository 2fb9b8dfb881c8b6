import Testing
@testable import QSInterpreter

struct GlobTests {
    @Test(arguments: [
        ("layer.*.mlp.*", "layer.3.mlp.up", true),
        ("layer.*.mlp.*", "layer.3.attn.q", false),
        ("layer.*", "layer.12.attn.o", true),
        ("*", "embed", true),
        ("embed", "embed", true),
        ("embed", "embedding", false),
        ("layer.[0-5].*", "layer.5.mlp.up", true),
        ("layer.[0-5].*", "layer.6.mlp.up", false),
        ("layer.[0-5].*", "layer.12.mlp.up", false),
        ("layer.[1,3,10-11].attn.*", "layer.10.attn.k", true),
        ("layer.[1,3,10-11].attn.*", "layer.2.attn.k", false),
        ("layer.?.attn.q", "layer.7.attn.q", true),
        ("layer.?.attn.q", "layer.17.attn.q", false),
        ("*.weight", "model.layers.0.self_attn.q_proj.weight", true),
        ("**", "", true),
        ("a*b*c", "aXbYbZc", true),
        ("a*b*c", "aXbYbZ", false),
    ] as [(String, String, Bool)])
    func matching(pattern: String, name: String, matches: Bool) throws {
        #expect(try Glob(pattern).matches(name) == matches)
    }

    static let names = ["embed", "layer.0.attn.q", "layer.0.mlp.up", "layer.1.attn.q", "layer.1.mlp.up", "head"]

    @Test func matchKeepsTheOrderOfNames() throws {
        #expect(try Glob("layer.*.mlp.*").match(GlobTests.names) == GlobMatch(matched: ["layer.0.mlp.up", "layer.1.mlp.up"], suggestions: []))
    }

    @Test func closeNamesAreSuggestedWhenNothingMatches() throws {
        #expect(try Glob("layer.*.mpl.*").match(GlobTests.names).suggestions == ["layer.0.mlp.up", "layer.1.mlp.up"])
        #expect(try Glob("haed").match(GlobTests.names).suggestions == ["head"])
        #expect(try Glob("tokenizer.vocabulary").match(GlobTests.names).suggestions.isEmpty)
    }

    @Test(arguments: ["layer.[0-5.*", "layer.[a-b].*", "layer.[5-1].*", "layer.[].*"])
    func malformedRangesAreErrors(pattern: String) {
        #expect(throws: GlobError.self) { try Glob(pattern) }
    }

    @Test func longNamesDoNotBacktrackExponentially() throws {
        let name = String(repeating: "a", count: 2_000)
        #expect(try !Glob(String(repeating: "*a", count: 50) + "b").matches(name))
    }
}
