/// Mixed precision under a size: one option per layer (a bit width, with its bytes and its
/// predicted damage) so that the bytes fit a budget and the summed damage is least — the
/// multiple-choice knapsack, solved by dynamic programming over the bytes.
///
/// Every layer's smallest option is paid first; the DP runs over what the budget leaves, in
/// units of the greatest common divisor of the options' extra bytes, which makes it exact. When
/// that would take more than `maxCells` cells, the unit grows and each extra is rounded up:
/// the plan still fits, and is optimal for sizes rounded to the unit.
package enum BitAllocation {
    /// One choice for one layer.
    package struct Option: Sendable, Equatable {
        package var bytes: Int
        package var damage: Double

        package init(bytes: Int, damage: Double) {
            self.bytes = bytes
            self.damage = damage
        }
    }

    /// The index of the option chosen for each layer, nil when even the smallest options do not
    /// fit. Among plans of equal damage, the earlier options win (list them smallest first).
    package static func choose(_ layers: [[Option]], budget: Int, maxCells: Int = 1 << 17) -> [Int]? {
        precondition(layers.allSatisfy { !$0.isEmpty }, "BitAllocation: a layer without options")
        let floors = layers.map { $0.map(\.bytes).min()! }
        let spare = budget - floors.reduce(0, +)
        guard spare >= 0 else { return nil }
        let extras = zip(layers, floors).map { options, floor in options.map { $0.bytes - floor } }
        var unit = extras.joined().reduce(0) { gcd($0, $1) }
        guard unit > 0 else {
            return layers.map { options in options.indices.min { options[$0].damage < options[$1].damage }! }
        }
        if spare / unit > maxCells { unit = (spare + maxCells - 1) / maxCells }
        let cells = spare / unit
        let costs = extras.map { $0.map { ($0 + unit - 1) / unit } }
        // best[c]: the least damage of the layers so far within c units; choice[l][c]: the
        // option layer l takes in it.
        var best = [Double](repeating: 0, count: cells + 1)
        var next = best
        var choice = [[UInt8]](repeating: [], count: layers.count)
        for (l, options) in layers.enumerated() {
            precondition(options.count <= Int(UInt8.max), "BitAllocation: too many options")
            var chosen = [UInt8](repeating: 0, count: cells + 1)
            for c in 0 ... cells {
                var least = Double.infinity
                for (o, option) in options.enumerated() where costs[l][o] <= c {
                    let total = best[c - costs[l][o]] + option.damage
                    if total < least {
                        least = total
                        chosen[c] = UInt8(o)
                    }
                }
                next[c] = least
            }
            swap(&best, &next)
            choice[l] = chosen
        }
        var plan = [Int](repeating: 0, count: layers.count)
        var c = cells
        for l in layers.indices.reversed() {
            plan[l] = Int(choice[l][c])
            c -= costs[l][plan[l]]
        }
        return plan
    }

    static func gcd(_ a: Int, _ b: Int) -> Int {
        var (x, y) = (abs(a), abs(b))
        while y != 0 { (x, y) = (y, x % y) }
        return x
    }
}
