"""risklab: Bayesian assessment of illegal-product risk on online marketplaces (DSA Arts. 34/35)."""

from risklab._version import __version__

__all__ = ["__version__"]
