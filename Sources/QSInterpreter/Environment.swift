/// One lexical scope: its variables and the scope around it. A class because scopes are shared
/// (a recipe keeps the scope it was defined in) and changed in place by assignment.
package final class Environment {
    private var values: [String: Value] = [:]
    package let parent: Environment?

    package init(parent: Environment? = nil) {
        self.parent = parent
    }

    /// The value of the nearest variable called `name`.
    package func lookup(_ name: String) -> Value? {
        var scope: Environment? = self
        while let current = scope {
            if let value = current.values[name] { return value }
            scope = current.parent
        }
        return nil
    }

    package func isDefined(_ name: String) -> Bool { lookup(name) != nil }

    /// Defines (or redefines) `name` in this scope.
    package func define(_ name: String, _ value: Value) {
        values[name] = value
    }

    /// Changes the nearest variable called `name`; false when there is none.
    package func assign(_ name: String, _ value: Value) -> Bool {
        var scope: Environment? = self
        while let current = scope {
            if current.values[name] != nil {
                current.values[name] = value
                return true
            }
            scope = current.parent
        }
        return false
    }

    /// Every name visible from this scope (for "did you mean").
    package var visibleNames: Set<String> {
        var names = Set(values.keys)
        if let parent { names.formUnion(parent.visibleNames) }
        return names
    }
}
