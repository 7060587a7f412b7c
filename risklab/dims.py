"""Reserved dimension names and library-wide defaults, defined once.

Every module that labels an array uses these names, so that results from different parts of the
library align without renaming. ``chain``, ``draw`` and ``sample`` are reserved by ArviZ for
posterior draws and are never used as data dimensions.
"""

from __future__ import annotations

CATEGORY = "category"
PERIOD = "period"
CHANNEL = "channel"
MEMBER_STATE = "member_state"
SCENARIO = "scenario"
STRIKES = "strikes"

#: Dims that label posterior draws; data never uses them.
SAMPLE_DIMS: tuple[str, ...] = ("chain", "draw")

#: Detection channels of DESIGN.md §4.1, in their canonical order.
CHANNELS: tuple[str, ...] = ("proactive", "notice", "trusted_flagger", "authority")

#: Default probability mass of credible intervals (equal-tailed).
DEFAULT_PROB = 0.90
