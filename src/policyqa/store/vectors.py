"""Vector arithmetic every engine shares: an evenly spread sample of rows, and each group's mean vector."""

from __future__ import annotations

import numpy as np

BACKGROUND = 1024


def sample_rows(n: int, at_most: int = BACKGROUND) -> np.ndarray:
    """Evenly spread row numbers, at most `at_most` of them (the same rows on every engine)."""
    return np.unique(np.linspace(0, n - 1, min(n, at_most)).astype(np.int64)) if n else np.zeros(0, np.int64)


def mean_vectors(vectors: np.ndarray, owner: np.ndarray, groups: int, block: int = 65_536) -> np.ndarray:
    """Each group's mean vector, normalised (a group without vectors stays zero); rows with owner -1 count
    for none. Summed a block of rows at a time, runs of one owner at once (a document's passages are
    consecutive), so a memory-mapped fp16 array is read once and never held whole in fp32."""
    sums = np.zeros((groups, vectors.shape[1] if vectors.ndim == 2 else 0), np.float32)
    for lo in range(0, len(owner), block):
        part, rows = owner[lo : lo + block], np.asarray(vectors[lo : lo + block], np.float32)
        starts = np.flatnonzero(np.r_[True, part[1:] != part[:-1]])
        runs, who = np.add.reduceat(rows, starts, axis=0) if len(rows) else rows, part[starts]
        keep = who >= 0
        np.add.at(sums, who[keep], runs[keep])
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    out: np.ndarray = sums / np.where(norms > 0, norms, 1.0)
    return out
