#!/usr/bin/env python3
"""Generates the sentence-pair task of examples/prequant_finetune.py: who did what to whom.

Every pair is two short sentences; the label says whether they mean the same thing:

  same (1):       "Alice praised the baker."      / "The baker was praised by Alice."
  same (1):       "The baker was praised by Alice." / "Alice praised the baker."
  different (0):  "Alice praised the baker."      / "The baker praised Alice."       (roles swapped)
  different (0):  "Alice praised the baker."      / "Alice was praised by the baker." (roles swapped, passive)
  different (0):  "Alice praised the baker."      / "Alice did not praise the baker." (negated)

Both sentences of a pair use the same words, so a bag-of-words embedding cannot tell the classes
apart: the model has to read word order and negation. Sentence embeddings of off-the-shelf models
(MiniLM included) are close to bag-of-words here, which leaves room for fine-tuning.

Source and licence: every sentence is produced by this script from the word lists below, written
for this repository (no third-party text); the data is part of the repository and under its
licence. Train and test use disjoint sets of people and nouns, so no test sentence (and no
test entity) appears in training. Deterministic (fixed seed): rerunning rewrites the same file.

    python3 examples/data/make_pairs.py        # writes examples/data/who_did_what.jsonl
"""
import json
import random
from pathlib import Path

# (base form, past tense, past participle)
VERBS = [
    ("praise", "praised", "praised"), ("blame", "blamed", "blamed"), ("call", "called", "called"),
    ("help", "helped", "helped"), ("follow", "followed", "followed"), ("invite", "invited", "invited"),
    ("thank", "thanked", "thanked"), ("warn", "warned", "warned"), ("visit", "visited", "visited"),
    ("hire", "hired", "hired"), ("teach", "taught", "taught"), ("see", "saw", "seen"),
    ("hear", "heard", "heard"), ("meet", "met", "met"), ("pay", "paid", "paid"),
    ("find", "found", "found"), ("choose", "chose", "chosen"), ("forgive", "forgave", "forgiven"),
    ("beat", "beat", "beaten"), ("interview", "interviewed", "interviewed"),
]
TRAIN_PEOPLE = ["Alice", "Bruno", "Chen", "Dmitri", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas",
                "Kofi", "Lena", "Marco", "Nadia", "Oscar", "Priya"]
TEST_PEOPLE = ["Quentin", "Rosa", "Sven", "Tara", "Umar", "Vera", "Wen", "Ximena", "Yusuf", "Zoe"]
TRAIN_NOUNS = ["the baker", "the doctor", "the pilot", "the teacher", "the farmer", "the lawyer",
               "the singer", "the coach", "the nurse", "the painter", "the driver", "the judge"]
TEST_NOUNS = ["the plumber", "the dentist", "the sailor", "the librarian", "the chef", "the banker",
              "the guard", "the tailor"]


def cap(s: str) -> str:
    return s[0].upper() + s[1:]


def active(a, verb, b):
    return f"{cap(a)} {verb[1]} {b}."


def passive(a, verb, b):
    return f"{cap(b)} was {verb[2]} by {a}."


def negated(a, verb, b):
    return f"{cap(a)} did not {verb[0]} {b}."


def pairs(people, nouns, count, rng):
    entities = people + nouns
    out, seen = [], set()
    while len(out) < count:
        a, b = rng.sample(entities, 2)
        verb = rng.choice(VERBS)
        first = rng.choice([active, passive])(a, verb, b)
        kind = rng.choice(["same", "same", "same", "swap", "swap_passive", "negated"])
        if kind == "same":
            second, label = (passive if first == active(a, verb, b) else active)(a, verb, b), 1
        elif kind == "swap":
            second, label = active(b, verb, a), 0
        elif kind == "swap_passive":
            second, label = passive(b, verb, a), 0
        else:
            second, label = negated(a, verb, b), 0
        if rng.random() < 0.5:
            first, second = second, first
        if (first, second) in seen:
            continue
        seen.add((first, second))
        out.append({"a": first, "b": second, "label": label, "kind": kind})
    return out


def main() -> None:
    rng = random.Random(20231)
    rows = [dict(r, split="train") for r in pairs(TRAIN_PEOPLE, TRAIN_NOUNS, 600, rng)]
    rows += [dict(r, split="test") for r in pairs(TEST_PEOPLE, TEST_NOUNS, 300, rng)]
    train = {s for r in rows if r["split"] == "train" for s in (r["a"], r["b"])}
    test = {s for r in rows if r["split"] == "test" for s in (r["a"], r["b"])}
    assert not train & test, "a test sentence occurs in training"
    path = Path(__file__).with_name("who_did_what.jsonl")
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    print(f"{path}: {sum(r['split'] == 'train' for r in rows)} train, {sum(r['split'] == 'test' for r in rows)} test pairs")


if __name__ == "__main__":
    main()
