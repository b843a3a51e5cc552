"""Paired comparison of two recipes' per-sentence cosines (saved by `SAVE_COS=dir recipes.py …`):
mean difference and its standard error over the 64 sentences, and how many sentences improve.

Run: python3 bench/quality/research/paired_se.py DIR recipe_a recipe_b [recipe_c …]  (each vs a)
"""
import sys
from pathlib import Path

import numpy as np

d = Path(sys.argv[1])
a = np.load(d / f"{sys.argv[2]}.npy")
for other in sys.argv[3:]:
    b = np.load(d / f"{other}.npy")
    diff = b - a
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    print(f"{other} − {sys.argv[2]}: {diff.mean():+.4f} ± {se:.4f} (SE), better on {(diff > 0).sum()}/{len(diff)} sentences")
