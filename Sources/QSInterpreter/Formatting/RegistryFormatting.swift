import QSEngine

/// Renders the registry listing of `qs fetch`.
package enum RegistryFormatting {
    package static func table(fetcher: Fetcher) -> String {
        let width = Registry.entries.map(\.name.count).max() ?? 0
        var lines = ["registry (cache: \(fetcher.home)):"]
        for entry in Registry.entries {
            let name = entry.name.padding(toLength: width, withPad: " ", startingAt: 0)
            let state = fetcher.isPresent(entry) ? "present" : "absent "
            let kind = entry.kind.rawValue.padding(toLength: 5, withPad: " ", startingAt: 0)
            lines.append("  \(name)  \(kind)  \(state)  \(entry.package)==\(entry.version)  \(entry.description)")
        }
        return lines.joined(separator: "\n")
    }
}
