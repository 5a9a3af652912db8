"""What every integer-vector search space shares: bounds checking and clipping."""

from __future__ import annotations

import numpy as np

from nas.genome import Genome


class IntegerVectorSpace:
    """Base of spaces whose genome is a fixed-length vector of integers in ``0..upper_bounds``.
    Subclasses set ``name`` and provide ``n_var`` and ``upper_bounds``."""

    name: str
    n_var: int
    upper_bounds: np.ndarray

    def validate(self, genome: Genome) -> None:
        v = np.asarray(genome.values)
        if genome.space != self.name:
            raise ValueError(f"genome of space {genome.space!r} given to space {self.name!r}")
        if v.shape != (self.n_var,):
            raise ValueError(f"genome must have {self.n_var} genes, got {len(v)}")
        if (v < 0).any() or (v > self.upper_bounds).any():
            raise ValueError(f"genome {list(v)} out of bounds 0..{list(self.upper_bounds)}")

    def clip(self, values) -> np.ndarray:
        """Round and clip any numeric vector into the bounds."""
        return np.clip(np.rint(np.asarray(values, dtype=float)), 0, self.upper_bounds).astype(np.int64)
