"""The cases of scripts/check-hostile: each runs the qs binary on a damaged input and judges
what came back. Standard library only."""
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
from collections import defaultdict

QS = os.path.abspath(sys.argv[1])
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCH = os.path.join(ROOT, "Tests/QSEngineTests/Fixtures/arch")
WORK = tempfile.mkdtemp(prefix="qs-hostile-")
ENV = dict(os.environ, NO_COLOR="1", QS_HOME=os.path.join(WORK, "home"))
TIMEOUT = 30

counts = defaultdict(lambda: [0, 0, 0, 0])  # tried, crashes, hangs, wrong
problems = []


def judge(cls, label, args, expect="either", cwd=None, check=None):
    """Runs qs with `args`. expect: "error" (must fail, naming what), "ok" (must succeed) or
    "either"; `check(result)` returns a complaint about a result or None."""
    counts[cls][0] += 1
    try:
        r = subprocess.run([QS] + args, capture_output=True, timeout=TIMEOUT, env=ENV, cwd=cwd)
    except subprocess.TimeoutExpired:
        counts[cls][2] += 1
        problems.append(f"{cls}: HANG {label}")
        return None
    out = r.stdout.decode("utf-8", "replace")
    err = r.stderr.decode("utf-8", "replace")
    if r.returncode < 0 or r.returncode > 128:
        counts[cls][1] += 1
        problems.append(f"{cls}: CRASH ({r.returncode}) {label}: {err[-300:]}")
        return r
    complaint = None
    if expect == "error" and r.returncode == 0:
        complaint = "succeeded where an error was due"
    elif expect == "ok" and r.returncode != 0:
        complaint = f"failed: {err[-200:]}"
    elif r.returncode != 0 and "error:" not in err:
        complaint = f"failed without an error message: {err[-200:]}"
    elif r.returncode == 0 and ("nan" in out.lower() or "inf" in out.split()) and "warning:" not in err:
        complaint = "printed a value that is not finite without saying why"
    elif r.returncode == 0 and " ppl                1.0000" in out:
        complaint = "a perplexity of 1 from nothing scored"
    if complaint is None and check is not None:
        complaint = check(r, out, err)
    if complaint:
        counts[cls][3] += 1
        problems.append(f"{cls}: WRONG {label}: {complaint}")
    return r


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


# A WordPiece tokenizer small enough for the tiny models' 96-token vocabularies.
TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + list("abcdefghijklmnopqrstuvwxyz") + ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"] + list(".,;:!?'-") + list("0123456789")
TOKENIZER = json.dumps({
    "version": "1.0", "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True} for i, t in enumerate(TOKENS[:4])],
    "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True, "strip_accents": None, "lowercase": True},
    "pre_tokenizer": {"type": "BertPreTokenizer"}, "post_processor": None, "decoder": None,
    "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": {t: i for i, t in enumerate(TOKENS)}},
})
TEXT = os.path.join(WORK, "text.txt")
write(TEXT, ("the quick brown fox jumps over the lazy dog, and the cat sat on the mat. " * 40 + "\n") * 4)


def script_for(arch):
    if arch == "bert":
        return f'load "{{model}}"\ninfo\nlayers *\neval embed "{TEXT}" sentences=2\n'
    return f'load "{{model}}"\ninfo\nlayers *\neval ppl "{TEXT}" tokens=48 ctx=16\ngenerate "the cat" tokens=3\n'


def model_copy(arch, name):
    target = os.path.join(WORK, name)
    shutil.copytree(os.path.join(ARCH, arch), target)
    write(os.path.join(target, "tokenizer.json"), TOKENIZER)
    return target


def run_model(cls, label, arch, folder, expect="either"):
    path = os.path.join(WORK, "run.qs")
    write(path, script_for(arch).replace("{model}", folder))
    judge(cls, label, ["run", path], expect)
    judge(cls, label + " (inspect)", ["inspect", folder], expect)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    return header, raw[8 + n:]


def write_safetensors(path, header, data):
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


# 1. Configurations and tensors that do not fit, over every architecture.
for arch in ["llama", "smollm2", "qwen2", "mistral", "gpt2", "bert"]:
    base = model_copy(arch, f"{arch}-base")
    run_model("config/tensor mismatch", f"{arch} as shipped", arch, base, expect="ok")
    config = json.load(open(os.path.join(base, "config.json")))
    for key, value in config.items():
        if isinstance(value, bool):
            candidates = ["yes", 0, None, not value]
        elif isinstance(value, int):
            candidates = [0, -1, 1, value + 1, value * 2, 2 ** 31, 10 ** 7, 2 ** 62, "x", 1.5, None, [], {}]
        elif isinstance(value, float):
            candidates = [0.0, -1.0, 1e30, "x", None]
        elif isinstance(value, str):
            candidates = ["bogus", "", 3] + (["llama", "qwen2", "gpt2", "bert", "mistral"] if key == "model_type" else []) + (["relu", "gelu", "silu"] if key in ("hidden_act", "activation_function") else [])
        else:
            candidates = [None, "x"]
        for candidate in candidates + ["<removed>"]:
            changed = dict(config)
            if candidate == "<removed>":
                del changed[key]
            else:
                changed[key] = candidate
            folder = os.path.join(WORK, "m")
            shutil.rmtree(folder, ignore_errors=True)
            shutil.copytree(base, folder)
            write(os.path.join(folder, "config.json"), json.dumps(changed))
            run_model("config/tensor mismatch", f"{arch} {key}={candidate!r}", arch, folder)
    header, data = read_safetensors(os.path.join(base, "model.safetensors"))
    names = [k for k in header if k != "__metadata__"]
    for name in names:
        folder = os.path.join(WORK, "m")
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(base, folder)
        changed = {k: v for k, v in header.items() if k != name}
        write_safetensors(os.path.join(folder, "model.safetensors"), changed, data)
        run_model("config/tensor mismatch", f"{arch} without {name}", arch, folder, expect="error")
    folder = os.path.join(WORK, "m")
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(base, folder)
    extra = dict(header)
    extra["extra.unused.weight"] = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    write_safetensors(os.path.join(folder, "model.safetensors"), extra, data)
    run_model("config/tensor mismatch", f"{arch} with an unused tensor", arch, folder, expect="error")


# 2. GGUF metadata: the tiny fuzz seed with each value changed.
def read_gguf(path):
    """(version, tensor count, metadata entries, tensor-info bytes, data bytes) of a GGUF whose
    metadata holds only strings, u32 and f32 values (the seed's)."""
    raw = open(path, "rb").read()
    version, tensors, kvs = struct.unpack_from("<IQQ", raw, 4)
    pos = 24
    entries = []
    for _ in range(kvs):
        n = struct.unpack_from("<Q", raw, pos)[0]
        key = raw[pos + 8:pos + 8 + n].decode()
        pos += 8 + n
        kind = struct.unpack_from("<I", raw, pos)[0]
        pos += 4
        if kind == 8:
            m = struct.unpack_from("<Q", raw, pos)[0]
            entries.append((key, "s", raw[pos + 8:pos + 8 + m].decode()))
            pos += 8 + m
        elif kind == 4:
            entries.append((key, "u", struct.unpack_from("<I", raw, pos)[0]))
            pos += 4
        elif kind == 6:
            entries.append((key, "f", struct.unpack_from("<f", raw, pos)[0]))
            pos += 4
        else:
            raise ValueError(f"seed has value type {kind}")
    start = pos
    for _ in range(tensors):
        n = struct.unpack_from("<Q", raw, pos)[0]
        pos += 8 + n
        dims = struct.unpack_from("<I", raw, pos)[0]
        pos += 4 + 8 * dims + 4 + 8
    infos = raw[start:pos]
    pos += (32 - pos % 32) % 32
    return version, tensors, entries, infos, raw[pos:]


def write_gguf(path, version, tensors, entries, infos, data):
    out = b"GGUF" + struct.pack("<IQQ", version, tensors, len(entries))
    for key, kind, value in entries:
        k = key.encode()
        out += struct.pack("<Q", len(k)) + k
        if kind == "s":
            v = value.encode()
            out += struct.pack("<IQ", 8, len(v)) + v
        elif kind == "u":
            out += struct.pack("<II", 4, value & 0xFFFFFFFF)
        elif kind == "i":
            out += struct.pack("<Ii", 5, value)
        else:
            out += struct.pack("<If", 6, value)
    out += infos
    out += b"\0" * ((32 - len(out) % 32) % 32)
    with open(path, "wb") as f:
        f.write(out + data)


seed = os.path.join(ROOT, "Tests/Fuzz/corpus/gguf/tiny-f32.gguf")
version, tensors, entries, infos, tensor_data = read_gguf(seed)
judge("config/tensor mismatch", "gguf as written", ["inspect", seed], expect="ok")
for index, (key, kind, value) in enumerate(entries):
    candidates = ["bogus", ""] if kind == "s" else ([0, 1, 2 ** 31, 10 ** 7, value + 1, value * 2] if kind == "u" else [0.0, -1.0, float("nan"), float("inf"), 1e30])
    for candidate in candidates + ["<removed>", "<negative>"]:
        changed = list(entries)
        if candidate == "<removed>":
            del changed[index]
        elif candidate == "<negative>":
            if kind != "u":
                continue
            changed[index] = (key, "i", -value if value else -1)
        else:
            changed[index] = (key, kind, candidate)
        path = os.path.join(WORK, "m.gguf")
        write_gguf(path, version, tensors, changed, infos, tensor_data)
        judge("config/tensor mismatch", f"gguf {key}={candidate!r}", ["inspect", path])
        judge("config/tensor mismatch", f"gguf {key}={candidate!r} (load)", ["-e", f'load "{path}"', "-e", "layers *"])

# 3. Deep or huge run-time values, and long import chains.
scripts = {
    "doubled list": "let a = [1]\nfor i in [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30] { a = a + a }",
    "nested list": "let a = []\nfor i in [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16] { for j in [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16] { a = [a] } }",
    "doubled string": 'let s = "x"\nfor i in [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30] { s = s + s }',
    "interpolated string": 'let s = "x"\nfor i in [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30] { s = "{s}{s}" }',
    "deep literal": "let a = " + "[" * 70000 + "]" * 70000,
    "deep parentheses": "let a = " + "(" * 70000 + "1" + ")" * 70000,
    "recursion": "recipe r(n) { r n }\nr 1",
}
for label, text in scripts.items():
    path = os.path.join(WORK, "s.qs")
    write(path, text)
    judge("deep or huge values", label, ["run", path], expect="error")
    judge("deep or huge values", label + " (check)", ["check", path])
chain = os.path.join(WORK, "chain")
os.makedirs(chain, exist_ok=True)
for i in range(5000):
    write(os.path.join(chain, f"f{i}.qs"), f'use "f{i + 1}.qs"\n' if i < 4999 else 'print "end"\n')
for command in ["run", "check"]:
    judge("deep or huge values", f"use chain of 5000 ({command})", [command, os.path.join(chain, "f0.qs")], expect="error")

# 4. Output that grows: binary files and garbled text as scripts, lines of megabytes.
binaries = {
    "gguf as a script": seed,
    "safetensors as a script": os.path.join(ROOT, "Tests/Fuzz/corpus/safetensors/tiny-f32.safetensors"),
    "qs binary as a script": QS,
}
for label, path in binaries.items():
    for command in ["run", "check"]:
        judge("output that grows", f"{label} ({command})", [command, path], expect="error",
              check=lambda r, out, err: "output too long" if len(out) + len(err) > 100_000 else None)
garbled = os.path.join(WORK, "garbled.qs")
with open(garbled, "wb") as f:
    f.write(bytes((i * 37 + 11) % 255 + 1 for i in range(4_000_000)))
longline = os.path.join(WORK, "long.qs")
write(longline, "print " + "x" * 3_000_000 + " @\n")
for label, path in [("4 MB of garbled bytes", garbled), ("a 3 MB line", longline)]:
    for command in ["run", "check"]:
        judge("output that grows", f"{label} ({command})", [command, path], expect="error",
              check=lambda r, out, err: "output too long" if len(out) + len(err) > 100_000 else None)

# 5. Files that are not regular files.
fifo = os.path.join(WORK, "fifo")
os.mkfifo(fifo)
llama = os.path.join(WORK, "llama-base")
fifo_config = model_copy("llama", "fifo-config")
os.remove(os.path.join(fifo_config, "config.json"))
os.mkfifo(os.path.join(fifo_config, "config.json"))
fifo_tokenizer = model_copy("llama", "fifo-tokenizer")
os.remove(os.path.join(fifo_tokenizer, "tokenizer.json"))
os.mkfifo(os.path.join(fifo_tokenizer, "tokenizer.json"))
for label, args, expect in [
    ("FIFO as a model (load)", ["-e", f'load "{fifo}"'], "error"),
    ("FIFO as a model (inspect)", ["inspect", fifo], "error"),
    ("FIFO as a model (convert)", ["convert", fifo, os.path.join(WORK, "out-fifo")], "error"),
    ("FIFO as config.json", ["inspect", fifo_config], "error"),
    ("FIFO as tokenizer.json", ["-e", f'load "{fifo_tokenizer}"', "-e", 'generate "a" tokens=1'], "error"),
    ("/dev/null as a model", ["inspect", "/dev/null"], "error"),
    ("a folder as a script (run)", ["run", WORK], "error"),
    ("a folder as a script (check)", ["check", WORK], "error"),
    ("/dev/null as a script", ["run", "/dev/null"], "ok"),
    ("/dev/zero as a script", ["run", "/dev/zero"], "error"),
    ("a missing script", ["run", os.path.join(WORK, "none.qs")], "error"),
]:
    judge("files that are not regular", label, args, expect,
          check=lambda r, out, err: "said 'no such file' of something that exists" if "no such file" in err and "none.qs" not in " ".join(r.args) else None)

# 6. Numbers without meaning.
short = model_copy("llama", "short-context")
config = json.load(open(os.path.join(short, "config.json")))
config["max_position_embeddings"] = 1
write(os.path.join(short, "config.json"), json.dumps(config))
nan_model = model_copy("bert", "nan-bert")
header, data = read_safetensors(os.path.join(nan_model, "model.safetensors"))
name = "encoder.layer.0.intermediate.dense.weight"
begin = header[name]["data_offsets"][0]
data = data[:begin] + struct.pack("<f", float("nan")) + data[begin + 4:]
write_safetensors(os.path.join(nan_model, "model.safetensors"), header, data)
nan_llama = model_copy("llama", "nan-llama")
header, data = read_safetensors(os.path.join(nan_llama, "model.safetensors"))
name = "model.layers.1.mlp.up_proj.weight"
begin = header[name]["data_offsets"][0]
data = data[:begin] + struct.pack("<f", float("nan")) * 8 + data[begin + 32:]
write_safetensors(os.path.join(nan_llama, "model.safetensors"), header, data)
needs_warning = lambda r, out, err: None if "warning:" in err and "not finite" in err else "no warning naming where values stopped being finite"
for label, args, expect, check in [
    ("max_position_embeddings 1", ["-e", f'load "{short}"', "-e", f'eval ppl "{TEXT}"'], "error", None),
    ("bench prompt=1 gen=1", ["-e", f'load "{llama}"', "-e", "bench prompt=1 gen=1"], "error", None),
    ("NaN weight in an encoder (embed)", ["-e", f'load "{nan_model}"', "-e", f'eval embed "{TEXT}" sentences=2'], "ok", needs_warning),
    ("NaN weight in a causal model (ppl)", ["-e", f'load "{nan_llama}"', "-e", f'eval ppl "{TEXT}" tokens=48 ctx=16'], "ok", needs_warning),
    ("NaN weight in a causal model (generate)", ["-e", f'load "{nan_llama}"', "-e", 'generate "the" tokens=2'], "error", None),
    ("a text of one token", ["-e", f'load "{llama}"', "-e", f'eval ppl "{os.path.join(WORK, "one.txt")}"'], "error", None),
]:
    write(os.path.join(WORK, "one.txt"), "a")
    judge("numbers without meaning", label, args, expect, check=check)

# 7. Paths that leave their place.
for shard in ["../outside/x.safetensors", "/etc/passwd", "sub/../../x.safetensors", ".."]:
    folder = model_copy("llama", "escape")
    os.rename(os.path.join(folder, "model.safetensors"), os.path.join(folder, "model-00001-of-00001.safetensors"))
    header, _ = read_safetensors(os.path.join(folder, "model-00001-of-00001.safetensors"))
    weight_map = {k: "model-00001-of-00001.safetensors" for k in header if k != "__metadata__"}
    weight_map[next(iter(weight_map))] = shard
    write(os.path.join(folder, "model.safetensors.index.json"), json.dumps({"weight_map": weight_map}))
    judge("paths that leave their place", f"shard {shard}", ["inspect", folder], expect="error")
    shutil.rmtree(folder)
empty = model_copy("llama", "empty-index")
os.remove(os.path.join(empty, "model.safetensors"))
write(os.path.join(empty, "model.safetensors.index.json"), '{"weight_map": {}}')
judge("paths that leave their place", "empty shard index", ["inspect", empty], expect="error")

# 8. Nothing a person had is lost.
out = os.path.join(WORK, "out")
judge("data loss", "convert into a new folder", ["convert", llama, out], expect="ok")
write(os.path.join(out, "notes.txt"), "mine")
kept = lambda r, out_, err: None if open(os.path.join(out, "notes.txt")).read() == "mine" else "the person's file is gone"
judge("data loss", "convert into an existing folder", ["convert", llama, out, "--dtype", "f16"], expect="error", check=kept)
judge("data loss", "convert --overwrite keeps other files", ["convert", llama, out, "--dtype", "f16", "--overwrite"], expect="ok", check=kept)
os.chmod(out, 0o555)
judge("data loss", "convert into a read-only folder", ["convert", llama, out, "--overwrite"], expect="error", check=kept)
os.chmod(out, 0o755)
judge("data loss", "convert SRC .", ["convert", llama, "."], expect="error", cwd=out, check=kept)
judge("data loss", "convert SRC . --overwrite", ["convert", llama, ".", "--overwrite"], expect="error", cwd=out, check=kept)
judge("data loss", "convert onto its source", ["convert", llama, llama, "--overwrite"], expect="error")
judge("data loss", "convert into the source's parent", ["convert", llama, WORK, "--overwrite"], expect="error")

# 9. The command line.
for topic in ["convert", "inspect", "run", "check", "fetch", "eval", "help"]:
    judge("command line", f"help {topic}", ["help", topic], expect="ok",
          check=lambda r, out, err: None if len(out) > 40 else "no help printed")
judge("command line", "help with a statement in its argument", ["help", "; fetch smollm2-135m"], expect="error",
      check=lambda r, out, err: "ran the statement" if os.path.exists(ENV["QS_HOME"]) else None)
judge("command line", "unknown option", ["run", "--bogus"], expect="error")

shutil.rmtree(WORK, ignore_errors=True)
print(f"{'class':32} {'cases':>6} {'crashes':>8} {'hangs':>6} {'wrong':>6}")
total = [0, 0, 0, 0]
for cls, (tried, crashes, hangs, wrong) in counts.items():
    print(f"{cls:32} {tried:6} {crashes:8} {hangs:6} {wrong:6}")
    total = [a + b for a, b in zip(total, [tried, crashes, hangs, wrong])]
print(f"{'all':32} {total[0]:6} {total[1]:8} {total[2]:6} {total[3]:6}")
for problem in problems:
    print(problem)
sys.exit(1 if problems else 0)
