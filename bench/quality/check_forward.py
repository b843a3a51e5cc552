"""Sanity checks of the numpy BERT forward pass and tokenizer (run: python3 bench/quality/check_forward.py).

1. Published reference: the sentence-transformers usage page (sbert.net, "Computing Embeddings")
   prints, for all-MiniLM-L6-v2, the similarity matrix of
   "The weather is lovely today." / "It's so sunny outside!" / "He drove to the stadium."
   as 0.6660, 0.1046, 0.1411 (4 decimals). Ours must agree within 5e-4.
2. Embeddings are unit norm.
3. Every paraphrase pair of the bench sentence set scores higher than every unrelated pair.
4. If the HF ``tokenizers`` package is installed, our WordPiece gives identical ids on every sentence.
Exits 1 on any failure.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bert_numpy import SentenceEmbedder  # noqa: E402
from model_fetch import fetch_minilm  # noqa: E402
from sentences import PARAPHRASE_PAIRS, SENTENCES, UNRELATED_PAIRS  # noqa: E402

REFERENCE = (["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."],
             {(0, 1): 0.6660, (0, 2): 0.1046, (1, 2): 0.1411})


def main() -> int:
    model_dir = fetch_minilm()
    emb = SentenceEmbedder(model_dir)
    failures = []

    ref_sentences, ref_sims = REFERENCE
    e = emb.embed(ref_sentences)
    sims = e @ e.T
    for (i, j), want in ref_sims.items():
        got = sims[i, j]
        status = "ok" if abs(got - want) <= 5e-4 else "FAIL"
        print(f"published sim[{i},{j}]: ours {got:.4f}  sbert.net {want:.4f}  {status}")
        if status != "ok":
            failures.append(f"sim[{i},{j}]")

    e = emb.embed(SENTENCES)
    norms = np.linalg.norm(e, axis=1)
    print(f"unit norm: max |‖e‖-1| = {np.abs(norms - 1).max():.2e}")
    if np.abs(norms - 1).max() > 1e-9:
        failures.append("unit norm")
    sims = e @ e.T
    para = np.array([sims[i, j] for i, j in PARAPHRASE_PAIRS])
    unrel = np.array([sims[i, j] for i, j in UNRELATED_PAIRS])
    print(f"paraphrase pairs: min {para.min():.3f} mean {para.mean():.3f}; "
          f"unrelated pairs: max {unrel.max():.3f} mean {unrel.mean():.3f}")
    if para.min() <= unrel.max():
        failures.append("paraphrase > unrelated")

    try:
        from tokenizers import Tokenizer
    except ImportError:
        print("tokenizers not installed: WordPiece cross-check skipped")
    else:
        ref = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        ref.no_padding()
        ref.no_truncation()
        extra = ["Café naïve résumé — déjà vu!", "e-mail: foo@bar.com, cost $3.50 (approx.)",
                 "Tokyo 東京 is big", "unbelievably antidisestablishmentarianism"]
        bad = [s for s in list(SENTENCES) + extra + ref_sentences
               if ref.encode(s).ids != emb.tokenizer.encode(s)]
        print(f"WordPiece vs HF tokenizers: {len(SENTENCES) + len(extra) + 3 - len(bad)} identical, {len(bad)} differ")
        if bad:
            failures.append(f"tokenizer differs on {bad[0]!r}")

    if failures:
        print("FAILED:", ", ".join(failures))
        return 1
    print("all forward-pass checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
