"""Art. 35 mitigation: what measures buy, and where extra review hours do the most good.

Art. 35 DSA asks a very large platform for "reasonable, proportionate and effective" mitigation
measures. With a fitted :class:`~risklab.PlatformRiskModel` this module puts numbers on three
questions, by moving the model's levers on the posterior draws (:mod:`risklab.counterfactual`;
nothing is refitted and no equation is re-derived here):

* :class:`Measure` — a mitigation measure: a :class:`~risklab.counterfactual.Levers` plus a cost
  (extra review hours, hidden-link controls, enforcing the strike policy, or any levers);
  :func:`combine` composes several into one package. :func:`evaluate` gives, per measure and
  category, the counterfactual prevalence, the undetected illegal listings, the listings avoided
  against the baseline, the residual band probabilities on the platform's own scale and the cost
  per avoided undetected illegal listing.
* :mod:`risklab.allocation` — where extra review hours do the most good
  (:func:`~risklab.allocation.allocate_review_hours`) and how many bring each category's detected
  share within a target of the truth (:func:`~risklab.allocation.hours_to_target`).

``docs/mitigation.md`` gives the definitions and the optimality argument.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd
import xarray as xr

from risklab._analysis import as_state, check_non_negative, check_prob, summarise
from risklab.counterfactual import Levers, PosteriorState, evaluate_arrays
from risklab.dims import CATEGORY, DEFAULT_PROB, SAMPLE_DIMS

__all__ = [
    "BASELINE",
    "COMBINED",
    "MEASURE",
    "Measure",
    "MitigationResult",
    "combine",
    "evaluate",
]

#: Dimension of :attr:`MitigationResult.draws` labelling measures (distinct from ``scenario``).
MEASURE = "measure"
#: Name of the no-measure world, always evaluated first.
BASELINE = "baseline"
#: Name of the package of all measures, evaluated when there are two or more.
COMBINED = "all measures combined"


#: Levers that describe the world rather than a measure: every part of a package that sets one
#: must set the same value.
_WORLD_LEVERS = ("listings_factor", "efficiency_decay", "prevalence_trend")
#: Avoided listings below this share of the baseline's undetected listings count as zero.
_ZERO_AVOIDED = 1e-9


@dataclass(frozen=True)
class Measure:
    """A mitigation measure: levers of the model and what they cost.

    Parameters
    ----------
    name : str
        Unique label in an evaluation (not ``"baseline"`` or ``"all measures combined"``).
    levers : Levers
        What the measure changes (see :class:`risklab.counterfactual.Levers`).
    cost : float
        Cost over the submission period, in currency units (≥ 0).
    description : str
        Plain-language description for reports.
    enforce_as_claimed : bool
        Set the enforcement probability to the platform's claimed enforcement when evaluated
        (the claim is read from the posterior state).
    total_review_hours : float
        Extra review hours spread over all categories in proportion to their listings (the
        naive allocation), resolved when evaluated.
    parts : tuple of Measure
        Non-empty for a package made by :func:`combine`; its levers are composed from the parts
        when evaluated (``levers`` is then neutral).
    """

    name: str
    levers: Levers = field(default_factory=Levers)
    cost: float = 0.0
    description: str = ""
    enforce_as_claimed: bool = False
    total_review_hours: float = 0.0
    parts: tuple[Measure, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"Measure name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.levers, Levers):
            raise ValueError(f"Measure {self.name!r}: levers must be a risklab Levers")
        object.__setattr__(
            self, "cost", check_non_negative(f"Measure {self.name!r}: cost", self.cost)
        )
        object.__setattr__(
            self,
            "total_review_hours",
            check_non_negative(
                f"Measure {self.name!r}: total_review_hours", self.total_review_hours
            ),
        )
        if self.parts and (
            not self.levers.is_neutral() or self.enforce_as_claimed or self.total_review_hours
        ):
            raise ValueError(
                f"Measure {self.name!r}: a package takes its levers from its parts; use combine()"
            )

    @classmethod
    def extra_review_hours(
        cls,
        hours: float | Mapping[str, float],
        *,
        cost_per_hour: float,
        name: str | None = None,
        description: str | None = None,
    ) -> Measure:
        """Extra review hours over the submission period, at a cost per hour.

        Parameters
        ----------
        hours : float or mapping
            A number: total extra hours, spread over categories in proportion to listings. A
            mapping category → hours: extra hours per category (unnamed categories get none).
            Within a category, hours are spread over periods in proportion to listings.
        cost_per_hour : float
            Currency units per review hour (≥ 0); the cost is total hours × cost per hour.
        """
        rate = check_non_negative("cost_per_hour", cost_per_hour)
        if isinstance(hours, Mapping):
            per = {
                str(k): check_non_negative(f"extra review hours for {k!r}", v)
                for k, v in hours.items()
            }
            total = sum(per.values())
            levers, spread = Levers(review_hours_add=per), 0.0
        else:
            total = check_non_negative("extra review hours", hours)
            levers, spread = Levers(), total
        return cls(
            name=name or f"+{total:,.0f} review hours",
            levers=levers,
            cost=total * rate,
            description=description or f"{total:,.0f} extra review hours at {rate:,.2f} per hour",
            total_review_hours=spread,
        )

    @classmethod
    def hidden_link_controls(
        cls,
        reduction: float | Mapping[str, float],
        *,
        cost: float,
        name: str | None = None,
        description: str | None = None,
    ) -> Measure:
        """Controls on hidden links, affiliate redirects and obfuscated titles.

        Parameters
        ----------
        reduction : float or mapping
            Share of the hidden share removed, in [0, 1] (0.5 halves evasion); a mapping sets
            it per category (unnamed categories unchanged).
        cost : float
            Currency units over the submission period.
        """

        def factor(value, label):
            value = float(value)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"hidden-share reduction{label} must be in [0, 1], got {value}")
            return 1.0 - value

        if isinstance(reduction, Mapping):
            levers = Levers(
                hidden_share_factor={str(k): factor(v, f" for {k!r}") for k, v in reduction.items()}
            )
            text = ", ".join(f"{k} {float(v):.0%}" for k, v in reduction.items())
        else:
            levers = Levers(hidden_share_factor=factor(reduction, ""))
            text = f"{float(reduction):.0%}"
        return cls(
            name=name or f"hidden-link controls (-{text})",
            levers=levers,
            cost=cost,
            description=description or f"hidden share reduced by {text}",
        )

    @classmethod
    def enforce_strike_policy(
        cls,
        enforcement: float | str = "claimed",
        *,
        cost: float,
        name: str | None = None,
        description: str | None = None,
    ) -> Measure:
        """Suspend traders past the strike threshold with a given probability.

        Parameters
        ----------
        enforcement : float or "claimed"
            The suspension probability, or ``"claimed"``: the platform's claimed enforcement.
            Needs the repeat-offender component in the fit.
        cost : float
            Currency units over the submission period.
        """
        if isinstance(enforcement, str):
            if enforcement != "claimed":
                raise ValueError(f"enforcement must be a number or 'claimed', got {enforcement!r}")
            return cls(
                name=name or "enforce strike policy as claimed",
                cost=cost,
                description=description
                or "traders past the strike threshold suspended as often as the platform claims",
                enforce_as_claimed=True,
            )
        levers = Levers(enforcement=float(enforcement))
        return cls(
            name=name or f"enforce strike policy (q = {float(enforcement):.2f})",
            levers=levers,
            cost=cost,
            description=description
            or f"traders past the strike threshold suspended with probability {enforcement:.2f}",
        )

    @property
    def is_package(self) -> bool:
        """Whether this is a package of measures (from :func:`combine`)."""
        return bool(self.parts)

    def levers_for(self, state: PosteriorState) -> Levers:
        """The levers this measure (or package) applies to ``state``, resolved per category.

        Composition of a package: factors multiply, additions (review hours, hidden share) add,
        enforcement and minimum saturation take the maximum; world levers (listing growth,
        efficiency decay, prevalence trend) must agree across parts.
        """
        parts = self.parts or (self,)
        cats = state.categories
        listings_k = state.listings.sum(axis=1)
        ones, zeros = np.ones(len(cats)), np.zeros(len(cats))
        products = {n: ones.copy() for n in ("review_hours_factor", "hidden_share_factor")}
        products["prevalence_odds"] = ones.copy()
        sums = {n: zeros.copy() for n in ("review_hours_add", "hidden_share_add")}
        efficiency = 1.0
        enforcement: list[float] = []
        saturation: list[float] = []
        world: dict[str, object] = {}
        for part in parts:
            lv = part.levers
            for name in products:
                products[name] = products[name] * lv.per_category(name, cats)
            for name in sums:
                sums[name] = sums[name] + lv.per_category(name, cats)
            sums["review_hours_add"] += part.total_review_hours * listings_k / listings_k.sum()
            efficiency *= lv.efficiency_factor
            if lv.enforcement is not None:
                enforcement.append(lv.enforcement)
            if part.enforce_as_claimed:
                if not state.has_offenders or state.claimed_enforcement is None:
                    raise ValueError(
                        f"Measure {part.name!r} enforces the strike policy as claimed: the fit "
                        "needs the repeat-offender component (traders.csv and a [policy] with "
                        "claimed_enforcement)"
                    )
                enforcement.append(float(state.claimed_enforcement))
            if lv.min_saturation is not None:
                saturation.append(lv.min_saturation)
            for name in _WORLD_LEVERS:
                if _is_set(getattr(lv, name), _neutral(name)):
                    world[name] = getattr(lv, name)
        return Levers(
            review_hours_factor=products["review_hours_factor"],
            review_hours_add=sums["review_hours_add"],
            hidden_share_factor=products["hidden_share_factor"],
            hidden_share_add=sums["hidden_share_add"],
            efficiency_factor=efficiency,
            enforcement=max(enforcement) if enforcement else None,
            prevalence_odds=products["prevalence_odds"],
            min_saturation=max(saturation) if saturation else None,
            **world,
        )


def _neutral(name: str):
    return {f.name: f.default for f in fields(Levers)}[name]


def _is_set(value, neutral: float) -> bool:
    """Whether a lever value differs from its neutral value somewhere."""
    if isinstance(value, Mapping):
        return any(float(v) != neutral for v in value.values())
    return bool(np.any(np.asarray(value, dtype=float) != neutral))


def _same(a, b) -> bool:
    if isinstance(a, Mapping) or isinstance(b, Mapping):
        return isinstance(a, Mapping) and isinstance(b, Mapping) and dict(a) == dict(b)
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.all(a == b))


def combine(
    measures: Sequence[Measure], *, name: str = COMBINED, description: str | None = None
) -> Measure:
    """Compose measures into one package (costs add; levers compose as in :meth:`levers_for`).

    Raises
    ------
    ValueError
        With no measures, duplicate names, or world levers (``listings_factor``,
        ``efficiency_decay``, ``prevalence_trend``) set to different values by two parts: they
        assume different worlds, so the package would have no meaning.
    """
    parts: list[Measure] = []
    for m in measures:
        if not isinstance(m, Measure):
            raise ValueError(f"combine takes Measure objects, got {type(m).__name__}")
        parts.extend(m.parts or (m,))
    if not parts:
        raise ValueError("combine needs at least one measure")
    names = [p.name for p in parts]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"duplicate measures in a package: {duplicated}")
    for lever in _WORLD_LEVERS:
        setters = [(p.name, getattr(p.levers, lever)) for p in parts]
        setters = [(n, v) for n, v in setters if _is_set(v, _neutral(lever))]
        if any(not _same(v, setters[0][1]) for _, v in setters[1:]):
            raise ValueError(
                f"conflicting {lever} in the package: "
                + ", ".join(f"{n!r} sets {v!r}" for n, v in setters)
            )
    return Measure(
        name=name,
        cost=sum(p.cost for p in parts),
        description=description or " + ".join(names),
        parts=tuple(parts),
    )


def _cost_per(cost: float, avoided, zero: float):
    """``cost / avoided``; ``inf`` when nothing is avoided (``nan`` if also free)."""
    avoided = np.asarray(avoided, dtype=float)
    positive = avoided > zero
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(positive, cost / np.where(positive, avoided, 1.0), np.inf)
    if cost == 0:
        ratio = np.where(positive, 0.0, np.nan)
    return ratio


@dataclass
class MitigationResult:
    """What each measure buys, per category and for the platform.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per measure × category (``baseline`` first): ``cost`` (of the whole measure),
        ``prevalence_*``, ``reported_share_median``, ``undetected_*`` and ``avoided_*``
        (``mean``, ``median``, ``low``, ``high``), ``p_avoided_positive``, ``p_band:<label>``
        (residual band probabilities of the prevalence on the platform's scale) and
        ``most_likely_band``.
    totals : pandas.DataFrame
        One row per measure, platform-wide: ``cost``, ``prevalence_*``, ``undetected_*``,
        ``avoided_*``, ``p_avoided_positive``, ``cost_per_avoided`` (cost / expected avoided)
        and ``cost_per_avoided_median``/``_low``/``_high`` (from the draws).
    draws : xarray.Dataset
        Over ``(measure, chain, draw, category)``: ``prevalence``, ``reported_share``,
        ``illegal_listings``, ``undetected_listings``, ``avoided``, ``band``; over
        ``(measure, chain, draw)``: ``total_prevalence``, ``total_undetected``,
        ``total_avoided``, ``cost_per_avoided``; coordinate ``cost`` on ``measure``.
    measures : tuple of Measure
        The measures evaluated (baseline and package included).
    prob : float
    warnings : list of str
    """

    table: pd.DataFrame
    totals: pd.DataFrame
    draws: xr.Dataset
    measures: tuple[Measure, ...]
    prob: float = DEFAULT_PROB
    warnings: list[str] = field(default_factory=list)


def evaluate(
    fitted_or_state,
    measures: Measure | Sequence[Measure],
    *,
    prob: float = DEFAULT_PROB,
    combined: bool = True,
) -> MitigationResult:
    """Evaluate mitigation measures on the posterior draws.

    Parameters
    ----------
    fitted_or_state : PlatformRiskModel or PosteriorState
        A fitted model, or its :class:`~risklab.counterfactual.PosteriorState`.
    measures : Measure or sequence of Measure
        Names must be unique and not ``"baseline"`` / ``"all measures combined"``.
    prob : float, default 0.90
        Probability mass of the equal-tailed intervals.
    combined : bool, default True
        With two or more measures, also evaluate all of them as one package
        (:func:`combine`; raises on conflicting world levers).

    Returns
    -------
    MitigationResult

    Notes
    -----
    *Avoided* listings are the reduction, per posterior draw, of the undetected illegal listings
    over the submission period (illegal listings no channel detects) against the baseline; a
    measure can avoid them by finding more (review, hidden-link controls) or by preventing them
    (enforcement lowers prevalence). The cost per avoided listing is the measure's cost divided
    by the avoided listings; it is ``inf`` when the measure avoids none (avoided at most
    10⁻⁹ × the baseline's undetected listings, or negative), ``0`` for a free measure that
    avoids some, ``nan`` for a free one that avoids none. Its interval maps the interval of the
    avoided listings through ``cost / ·`` (a decreasing map, so the quantiles correspond); the
    point value ``cost_per_avoided`` is cost / *expected* avoided, the ratio to use for
    decisions.
    """
    prob = check_prob(prob)
    state, warnings = as_state(fitted_or_state)
    if isinstance(measures, Measure):
        measures = [measures]
    measures = list(measures)
    if not measures:
        raise ValueError("evaluate needs at least one Measure")
    names = []
    for m in measures:
        if not isinstance(m, Measure):
            raise ValueError(f"measures must be Measure objects, got {type(m).__name__}")
        if m.name in (BASELINE, COMBINED):
            raise ValueError(f"measure name {m.name!r} is reserved")
        names.append(m.name)
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"duplicate measure names: {duplicated}")
    evaluated = [Measure(BASELINE, description="the fitted world, no measure"), *measures]
    if combined and len(measures) > 1:
        evaluated.append(combine(measures))
    outs = [evaluate_arrays(state, m.levers_for(state)) for m in evaluated]

    def stack(key):
        return np.stack([o[key] for o in outs])  # (M, S, K)

    prevalence, illegal = stack("prevalence"), stack("illegal_listings")
    reported = stack("reported_share")
    undetected = stack("undetected_listings")
    avoided = undetected[0][None] - undetected
    listings = illegal / prevalence
    total_prev = illegal.sum(-1) / listings.sum(-1)
    total_undetected = undetected.sum(-1)
    total_avoided = total_undetected[0][None] - total_undetected
    zero = _ZERO_AVOIDED * total_undetected[0].mean()
    costs = np.array([m.cost for m in evaluated])
    cpa = np.stack([_cost_per(c, a, zero) for c, a in zip(costs, total_avoided, strict=True)])
    band = state.band_index(prevalence)

    rows = []
    cats, labels = state.categories, state.labels
    for i, m in enumerate(evaluated):
        prev = summarise(prevalence[i], prob)
        und = summarise(undetected[i], prob)
        avo = summarise(avoided[i], prob)
        rep = np.median(reported[i], axis=0)
        probs = np.stack([(band[i] == b).mean(axis=0) for b in range(len(labels))], axis=-1)
        for k, cat in enumerate(cats):
            row = {"measure": m.name, "category": cat, "cost": m.cost}
            row |= {f"prevalence_{s}": prev[s][k] for s in ("median", "low", "high")}
            row["reported_share_median"] = rep[k]
            row |= {f"undetected_{s}": und[s][k] for s in und}
            row |= {f"avoided_{s}": avo[s][k] for s in avo}
            row["p_avoided_positive"] = float((avoided[i][:, k] > 0).mean())
            row |= {f"p_band:{lab}": probs[k, b] for b, lab in enumerate(labels)}
            row["most_likely_band"] = labels[int(probs[k].argmax())]
            rows.append(row)
    total_rows = []
    for i, m in enumerate(evaluated):
        prev = summarise(total_prev[i], prob)
        und = summarise(total_undetected[i], prob)
        avo = summarise(total_avoided[i], prob)
        row = {"measure": m.name, "cost": m.cost}
        row |= {f"prevalence_{s}": prev[s] for s in ("median", "low", "high")}
        row |= {f"undetected_{s}": und[s] for s in und}
        row |= {f"avoided_{s}": avo[s] for s in avo}
        row["p_avoided_positive"] = float((total_avoided[i] > 0).mean())
        row["cost_per_avoided"] = float(_cost_per(m.cost, avo["mean"], zero))
        row["cost_per_avoided_median"] = float(_cost_per(m.cost, avo["median"], zero))
        row["cost_per_avoided_low"] = float(_cost_per(m.cost, avo["high"], zero))
        row["cost_per_avoided_high"] = float(_cost_per(m.cost, avo["low"], zero))
        total_rows.append(row)

    shape = (len(evaluated), *state.sample_shape)
    dims = (MEASURE, *SAMPLE_DIMS)
    cat_dims = (*dims, CATEGORY)
    k_len = len(cats)
    draws = xr.Dataset(
        {
            "prevalence": (cat_dims, prevalence.reshape(*shape, k_len)),
            "reported_share": (cat_dims, reported.reshape(*shape, k_len)),
            "illegal_listings": (cat_dims, illegal.reshape(*shape, k_len)),
            "undetected_listings": (cat_dims, undetected.reshape(*shape, k_len)),
            "avoided": (cat_dims, avoided.reshape(*shape, k_len)),
            "band": (cat_dims, band.reshape(*shape, k_len)),
            "total_prevalence": (dims, total_prev.reshape(shape)),
            "total_undetected": (dims, total_undetected.reshape(shape)),
            "total_avoided": (dims, total_avoided.reshape(shape)),
            "cost_per_avoided": (dims, cpa.reshape(shape)),
        },
        coords={MEASURE: [m.name for m in evaluated], CATEGORY: cats, "cost": (MEASURE, costs)},
        attrs={"labels": list(labels), "prob": prob},
    )
    return MitigationResult(
        table=pd.DataFrame(rows),
        totals=pd.DataFrame(total_rows),
        draws=draws,
        measures=tuple(evaluated),
        prob=prob,
        warnings=warnings,
    )
