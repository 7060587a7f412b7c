"""Helpers for likelihood terms observed only in some (category, period) cells."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pymc as pm
import xarray as xr

from risklab.dims import CATEGORY, PERIOD


@dataclass(frozen=True)
class Cells:
    """The (category, period) cells where a count table has data, as flat index arrays."""

    category_index: np.ndarray
    period_index: np.ndarray
    labels: np.ndarray

    @classmethod
    def where_positive(cls, data: xr.Dataset, trials: str) -> Cells:
        """Cells where ``data[trials]`` (a category × period count) is positive."""
        mask = np.asarray(data[trials].transpose(CATEGORY, PERIOD).values) > 0
        cat_idx, per_idx = np.nonzero(mask)
        categories = np.asarray(data[CATEGORY].values, dtype=str)
        periods = np.asarray(data[PERIOD].values, dtype=str)
        labels = np.array(
            [f"{categories[k]}|{periods[t]}" for k, t in zip(cat_idx, per_idx, strict=True)],
            dtype=str,
        )
        return cls(cat_idx, per_idx, labels)

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, matrix):
        """Pick these cells from a (category, period) tensor or array."""
        return matrix[self.category_index, self.period_index]

    def values(self, data: xr.Dataset, name: str) -> np.ndarray:
        """Values of the data variable ``name`` in these cells."""
        return self.take(np.asarray(data[name].transpose(CATEGORY, PERIOD).values))

    def add_coord(self, dim: str) -> None:
        """Register the cells as a coordinate of the current model."""
        pm.modelcontext(None).add_coord(dim, self.labels)
