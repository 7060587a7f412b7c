"""Figures. Keyword-only arguments, ``ax=`` accepted, matplotlib objects returned.

Nothing here calls ``plt.show()``; callers decide where figures go. One module per analysis:
``findings`` (the Art. 34 assessment); the analysis modules' figures live beside it.
"""

from risklab.plotting.findings import plot_enforcement, plot_prevalence_vs_claimed

__all__ = ["plot_enforcement", "plot_prevalence_vs_claimed"]
