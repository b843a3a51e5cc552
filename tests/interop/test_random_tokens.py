"""Data-free calibration on random tokens (spec/quantization.md §13): the sequences are the ones
the spec defines (SplitMix64 over the tokenizer's ordinary tokens, rebuilt here from tokenizer.json
alone), so `qpk calibrate --random-tokens` sums equal a numpy forward pass on them; the same command
writes the same bytes; and `convert --random-tokens` quantizes with BoA without any text."""
import hashlib
import json

import gguf
import numpy as np

from conftest import run_json, run_qpk
from test_imatrix import ENCODER_2D, llama_cpp_name, numpy_sums

MASK = (1 << 64) - 1


def splitmix64(seed):
    state = seed
    while True:
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        yield z ^ (z >> 31)


def ordinary_ids(tokenizer_json):
    """Vocabulary ids that are neither added tokens nor one bracketed word ([…] or <…>)."""
    added = {t["id"] for t in tokenizer_json["added_tokens"]}

    def placeholder(token):
        return len(token.encode()) >= 3 and " " not in token and (
            (token[0] == "[" and token[-1] == "]") or (token[0] == "<" and token[-1] == ">"))

    return sorted(i for t, i in tokenizer_json["model"]["vocab"].items() if not placeholder(t) and i not in added)


def random_sequences(model_dir, count, length, seed=0):
    spec = json.loads((model_dir / "tokenizer.json").read_text())
    ordinary = ordinary_ids(spec)
    # The special tokens around a sequence, as Hugging Face's tokenizer adds them ([CLS] … [SEP]).
    from tokenizers import Tokenizer
    hf = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    hf.no_padding()
    cls, sep = hf.encode("").ids
    draw = splitmix64(seed)
    return [[cls] + [ordinary[next(draw) % len(ordinary)] for _ in range(length - 2)] + [sep] for _ in range(count)]


def test_minilm_has_the_ordinary_tokens_we_expect(minilm):
    ordinary = ordinary_ids(json.loads((minilm.parent / "tokenizer.json").read_text()))
    # 30522 entries less [PAD], [UNK], [CLS], [SEP], [MASK] and the 994 [unusedN] placeholders.
    assert len(ordinary) == 30522 - 5 - 994
    assert 1996 in ordinary and 101 not in ordinary and 1 not in ordinary


def test_calibrate_on_random_tokens_sums_the_specified_sequences(minilm, tmp_path):
    model_dir = minilm.parent
    out = tmp_path / "random.imatrix.gguf"
    run_qpk("calibrate", model_dir, "--random-tokens", "--samples", "6", "--seq-len", "24", "-o", out)
    reader = gguf.GGUFReader(out)
    assert reader.fields["imatrix.datasets"].contents() == ["random tokens (seed 0)"]
    assert reader.fields["imatrix.chunk_count"].contents() == 6
    expected, tokens = numpy_sums(model_dir, random_sequences(model_dir, 6, 24))
    assert tokens == 6 * 24
    tensor = {t.name: np.asarray(t.data, dtype=np.float64).reshape(-1) for t in reader.tensors}
    for hf_name, sums in expected.items():
        name = llama_cpp_name(hf_name)
        assert tensor[name + ".counts"].tolist() == [tokens], name
        assert np.linalg.norm(tensor[name + ".in_sum2"] - sums) / np.linalg.norm(sums) < 1e-4, name
    again = tmp_path / "again.imatrix.gguf"
    run_qpk("calibrate", model_dir, "--random-tokens", "--samples", "6", "--seq-len", "24", "-o", again)
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(again.read_bytes()).digest()


def test_convert_on_random_tokens_is_calibrated_boa(minilm, tmp_path):
    out = tmp_path / "random.qpk"
    summary = run_json("convert", minilm.parent, out, *ENCODER_2D, "--random-tokens", "--samples", "8",
                       "--seq-len", "32", "--force")
    quantized = [t for t in summary["tensors"] if t["action"] == "quantize"]
    assert len(quantized) == 36
    # BoA solves the query, key and value projections; the output projection and the FFN are GPTQ's.
    for t in quantized:
        attention_input = any(k in t["name"] for k in (".query.", ".key.", ".value."))
        assert t["decision"]["method"] == ("boa" if attention_input else "gptq"), t["name"]
    run_qpk("validate", out)


def test_random_tokens_and_calibration_text_exclude_each_other(minilm, tmp_path):
    text = tmp_path / "calib.txt"
    text.write_text("One passage.\n")
    result = run_qpk("convert", minilm.parent, tmp_path / "x.qpk", "--random-tokens", "--calibration", text,
                     check=False)
    assert result.returncode == 2
    assert "--random-tokens" in result.stderr and "--calibration" in result.stderr
    assert not (tmp_path / "x.qpk").exists()
