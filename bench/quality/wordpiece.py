"""BERT uncased WordPiece tokenizer, written from the published algorithm.

The rules follow the original BERT release (Devlin et al., 2018, `tokenization.py` semantics as
described in the paper's appendix and the HF `BertNormalizer`/`BertPreTokenizer` docs):

1. Clean: drop NUL, U+FFFD and control characters; map every whitespace character to a space.
2. Put spaces around CJK ideographs so each becomes its own word.
3. Lowercase, then strip accents (NFD decomposition, drop combining marks, category ``Mn``).
   With ``lowercase=True`` and ``strip_accents=None`` this is what the model's tokenizer.json asks.
4. Split on whitespace, then split every punctuation character off as its own word. "Punctuation"
   is any Unicode ``P*`` character plus the ASCII symbol ranges (``$``, ``+``, ``^`` ... count too).
5. WordPiece each word greedily, longest prefix first; continuation pieces carry ``##``. A word that
   cannot be covered, or that is longer than 100 characters, becomes ``[UNK]``.

The vocabulary is read from ``tokenizer.json`` (``model.vocab``), so no other file is needed.
"""
from __future__ import annotations

import json
import unicodedata
from pathlib import Path

MAX_CHARS_PER_WORD = 100


def _is_whitespace(ch: str) -> bool:
    if ch in (" ", "\t", "\n", "\r"):
        return True
    return unicodedata.category(ch) == "Zs"


def _is_control(ch: str) -> bool:
    if ch in ("\t", "\n", "\r"):
        return False
    return unicodedata.category(ch) in ("Cc", "Cf")


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


class WordPieceTokenizer:
    """Uncased BERT tokenizer: ``encode(text)`` gives ``[CLS] ... [SEP]`` token ids."""

    def __init__(self, vocab: dict[str, int], max_length: int = 256) -> None:
        self.vocab = vocab
        self.max_length = max_length
        self.cls_id = vocab["[CLS]"]
        self.sep_id = vocab["[SEP]"]
        self.unk_id = vocab["[UNK]"]
        self.pad_id = vocab["[PAD]"]

    @classmethod
    def from_tokenizer_json(cls, path: str | Path, max_length: int = 256) -> "WordPieceTokenizer":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        model = data["model"]
        if model.get("type") != "WordPiece":
            raise ValueError(f"{path}: tokenizer model is {model.get('type')!r}, expected WordPiece")
        return cls(dict(model["vocab"]), max_length=max_length)

    # -- basic tokenization -------------------------------------------------------------------
    def basic_tokenize(self, text: str) -> list[str]:
        cleaned = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or _is_control(ch):
                continue
            if _is_whitespace(ch):
                cleaned.append(" ")
            elif _is_cjk(cp):
                cleaned.append(f" {ch} ")
            else:
                cleaned.append(ch)
        text = "".join(cleaned).lower()
        text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
        words: list[str] = []
        for chunk in text.split():
            current = ""
            for ch in chunk:
                if _is_punctuation(ch):
                    if current:
                        words.append(current)
                        current = ""
                    words.append(ch)
                else:
                    current += ch
            if current:
                words.append(current)
        return words

    # -- wordpiece ----------------------------------------------------------------------------
    def wordpiece(self, word: str) -> list[int]:
        if len(word) > MAX_CHARS_PER_WORD:
            return [self.unk_id]
        ids: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end]
                if start > 0:
                    piece = "##" + piece
                if piece in self.vocab:
                    found = self.vocab[piece]
                    break
                end -= 1
            if found is None:
                return [self.unk_id]
            ids.append(found)
            start = end
        return ids

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for word in self.basic_tokenize(text):
            ids.extend(self.wordpiece(word))
        ids = ids[: self.max_length - 2]
        return [self.cls_id, *ids, self.sep_id]
