"""Figures. Keyword-only arguments, ``ax=`` (or ``axes=`` for grids) accepted, matplotlib objects
returned; nothing here calls ``plt.show()`` — callers decide where figures go.

One module per analysis: ``findings`` (the Art. 34 assessment), ``report_figures`` (band
probabilities, prior vs. posterior, convergence), ``capacity`` (review capacity → detection),
``attribution``, ``scenarios``, ``mitigation``, ``design`` (audit power) and ``sensitivity``.
"""

from risklab.plotting.attribution import plot_attribution_grid, plot_attribution_waterfall
from risklab.plotting.capacity import capacity_curves, plot_capacity_curve, plot_capacity_curves
from risklab.plotting.design import plot_audit_power
from risklab.plotting.findings import plot_enforcement, plot_prevalence_vs_claimed
from risklab.plotting.mitigation import plot_allocation, plot_cost_effectiveness
from risklab.plotting.monitoring import plot_commitment_status, plot_commitment_trend, plot_kpis
from risklab.plotting.report_figures import (
    plot_band_probabilities,
    plot_convergence,
    plot_prior_posterior,
)
from risklab.plotting.scenarios import plot_scenario_bands, plot_undetected_by_scenario
from risklab.plotting.sensitivity import plot_prior_sets

__all__ = [
    "capacity_curves",
    "plot_allocation",
    "plot_attribution_grid",
    "plot_attribution_waterfall",
    "plot_audit_power",
    "plot_band_probabilities",
    "plot_capacity_curve",
    "plot_capacity_curves",
    "plot_commitment_status",
    "plot_commitment_trend",
    "plot_convergence",
    "plot_cost_effectiveness",
    "plot_enforcement",
    "plot_kpis",
    "plot_prevalence_vs_claimed",
    "plot_prior_posterior",
    "plot_prior_sets",
    "plot_scenario_bands",
    "plot_undetected_by_scenario",
]
