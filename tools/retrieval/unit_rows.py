"""Vectors scaled to length 1, as every embedder returns them (cosine is then a dot product)."""

import numpy as np

__all__ = ["unit_rows"]


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """`matrix` as float32 with each row scaled to length 1 (zero rows stay zero)."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)
