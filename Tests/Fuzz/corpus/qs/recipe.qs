# A script that reaches every form: load, layers, eval, generate, recipes, loops, imports.
load tiny
use "lib.qs"
let base = eval ppl tokens=32 ctx=8
recipe twice_eval(n, ctx=8) {
    for i in [1, 2] { let r = eval ppl tokens=n ctx=ctx; print "{i}: {r.ppl}" }
}
twice_eval 16
if base.ppl > 0 and not (base.ppl < 0) { print "ok {base.ppl}" } else { print "nan" }
layers layer.[0-1].attn.*
snapshot a
restore a
generate "hi" tokens=2
twice "x"
assert base.ppl > 0, "ppl {base.ppl}"
