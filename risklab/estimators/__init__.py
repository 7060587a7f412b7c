"""Standalone estimators of hidden populations and prevalence.

They depend on nothing above :mod:`risklab.priors` and are reused by the model components.
"""

from risklab.estimators.results import PopulationEstimate, PrevalenceEstimate

__all__ = ["PopulationEstimate", "PrevalenceEstimate"]
