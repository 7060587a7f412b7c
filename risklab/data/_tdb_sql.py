"""The DuckDB query that classifies and aggregates one table of statements of reasons.

One scan per table, one ``GROUP BY GROUPING SETS`` producing five small results at once:

- ``status``: statements per outcome (``kept`` or the reason for leaving it out) and database
  category, with an example ``uuid``;
- ``breakdown``: kept statements per rule, month, channel, decision ground, automated
  detection and automated decision;
- ``age``: kept statements per rule, month, channel and listing age in days (a histogram, so
  that quantiles stay exact when tables are merged);
- ``coverage``: statements (all platforms) per day of submission (``created_at``);
- ``platforms``: statements of other platforms per name (to help when the name does not match).

Memory is bounded by the number of groups, not rows: DuckDB streams the table.
"""

from __future__ import annotations

from collections.abc import Iterable

from risklab.data.mappings import (
    KNOWN_CATEGORIES,
    PRODUCT_CONTENT_TYPE,
    CategoryMapping,
)

__all__ = [
    "CSV_OPTIONAL",
    "CSV_REQUIRED",
    "EXCLUDED_REASONS",
    "SKIP_REASONS",
    "UNMAPPED_REASON",
    "aggregate_sql",
    "csv_source",
    "parquet_source",
]

#: Columns the importer needs.
CSV_REQUIRED: tuple[str, ...] = (
    "category",
    "category_specification",
    "content_type",
    "source_type",
    "application_date",
    "platform_name",
    "automated_detection",
    "automated_decision",
    "decision_ground",
)
#: Columns used when present (NULL otherwise).
CSV_OPTIONAL: tuple[str, ...] = (
    "uuid",
    "content_date",
    "created_at",
    "incompatible_content_illegal",
)

#: Reasons a statement of the platform is skipped as malformed (data problems), with help.
SKIP_REASONS: dict[str, str] = {
    "malformed_csv_row": "the CSV line could not be parsed (wrong number of fields or quoting)",
    "invalid_application_date": "application_date is missing or not a YYYY-MM-DD date",
    "malformed_content_type": "content_type is missing or not a JSON array",
    "malformed_keywords": "category_specification is not a JSON array",
    "unknown_category": "category is missing or not a statement category of either schema",
    "unknown_source_type": "source_type is missing or not a known source type",
}
#: Reasons a statement is left out by design (not a data problem).
EXCLUDED_REASONS: dict[str, str] = {
    "other_platform": "statement of another platform",
    "not_product_content": "content_type does not include CONTENT_TYPE_PRODUCT",
    "not_illegal_ground": "decided on terms-and-conditions grounds only (ground='illegal')",
    "channel_excluded": "source_type mapped to no channel",
    "excluded_by_mapping": "a mapping rule excludes it",
}
#: Statements of the platform about products that no mapping rule covers.
UNMAPPED_REASON = "unmapped"


def _q(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _in_list(values: Iterable[str]) -> str:
    return "(" + ", ".join(_q(v) for v in sorted(values)) + ")"


def _list_literal(values: Iterable[str]) -> str:
    return "[" + ", ".join(_q(v) for v in sorted(values)) + "]::VARCHAR[]"


def csv_source(path: str, header: list[str]) -> str:
    """A ``read_csv`` call reading every column of ``header`` as text, bad lines to rejects."""
    cols = ", ".join(f"{_q(c)}: 'VARCHAR'" for c in header)
    return (
        f"read_csv({_q(path)}, header = true, auto_detect = false, columns = {{{cols}}}, "
        "delim = ',', quote = '\"', escape = '\"', ignore_errors = true, "
        "store_rejects = true, rejects_table = 'risklab_rejects', "
        "rejects_scan = 'risklab_reject_scans', max_line_size = 8388608)"
    )


def parquet_source(path: str) -> str:
    """A ``read_parquet`` call."""
    return f"read_parquet({_q(path)})"


def _col(name: str, available: dict[str, str]) -> str:
    """Text value of a column (lists as JSON, other types cast), or NULL if absent."""
    if name not in available:
        return "NULL::VARCHAR"
    ident = '"' + name.replace('"', '""') + '"'
    dtype = available[name].upper()
    if dtype.endswith("[]") or dtype.startswith(("LIST", "STRUCT", "MAP")):
        return f"to_json({ident})::VARCHAR"
    if dtype == "VARCHAR":
        return ident
    return f"CAST({ident} AS VARCHAR)"


def _rule_case(mapping: CategoryMapping) -> str:
    """CASE returning the index of the first matching rule, NULL when none matches."""
    whens = []
    for i, rule in enumerate(mapping.rules):
        conds = []
        cats = rule.db_categories()
        if cats is not None:
            conds.append(f"db_category IN {_in_list(cats)}")
        kws = rule.keywords()
        if kws is not None:
            conds.append(f"list_has_any(kws, {_list_literal(kws)})")
        whens.append(f"WHEN {' AND '.join(conds) or 'TRUE'} THEN {i}")
    return "CASE " + " ".join(whens) + " END"


def aggregate_sql(
    source: str,
    available: dict[str, str],
    *,
    mapping: CategoryMapping,
    channel_map: dict[str, str | None],
    product_only: bool,
    ground: str,
) -> str:
    """The classification and aggregation query over one table.

    Parameters
    ----------
    source : str
        A table expression (:func:`csv_source`, :func:`parquet_source`).
    available : dict of str to str
        Columns of the table and their DuckDB types.
    mapping : CategoryMapping
    channel_map : dict
        Source type -> channel (None: left out).
    product_only : bool
        Keep only statements whose content_type includes ``CONTENT_TYPE_PRODUCT``.
    ground : {"all", "illegal"}
        ``"illegal"`` keeps statements decided on legal grounds, or on terms-and-conditions
        grounds with ``incompatible_content_illegal = 'Yes'``.

    Returns
    -------
    str
        SQL with one parameter (``$1``: the platform name). Result columns: ``gs`` (grouping
        set: status, breakdown, age, coverage, platforms), ``reason``, ``db_category``,
        ``rule``, ``period``, ``channel``, ``ground``, ``automated_detection``,
        ``automated_decision``, ``age_days``, ``created_date``, ``platform_name``, ``n``,
        ``example_uuid``.
    """
    c = {name: _col(name, available) for name in (*CSV_REQUIRED, *CSV_OPTIONAL)}
    known_sources = [s for s in channel_map]
    excluded_sources = [s for s, ch in channel_map.items() if ch is None]
    channel_case = (
        "CASE source_type "
        + " ".join(f"WHEN {_q(s)} THEN {_q(ch)}" for s, ch in channel_map.items() if ch)
        + " END"
    )
    product_when = (
        f"WHEN NOT list_contains(cts, {_q(PRODUCT_CONTENT_TYPE)}) THEN 'not_product_content'"
        if product_only
        else ""
    )
    ground_when = (
        "WHEN NOT (coalesce(ground_raw = 'DECISION_GROUND_ILLEGAL_CONTENT', FALSE) "
        "OR coalesce(lower(inc_illegal) = 'yes', FALSE)) THEN 'not_illegal_ground'"
        if ground == "illegal"
        else ""
    )
    excluded_when = (
        f"WHEN source_type IN {_in_list(excluded_sources)} THEN 'channel_excluded'"
        if excluded_sources
        else ""
    )
    return f"""
WITH raw AS (
    SELECT
        trim({c["category"]}) AS db_category,
        trim({c["category_specification"]}) AS kw_raw,
        trim({c["content_type"]}) AS ct_raw,
        trim({c["source_type"]}) AS source_type,
        trim({c["application_date"]}) AS app_raw,
        trim({c["content_date"]}) AS cd_raw,
        trim({c["created_at"]}) AS ca_raw,
        trim({c["platform_name"]}) AS platform_name,
        lower(trim({c["automated_detection"]})) AS auto_det_raw,
        trim({c["automated_decision"]}) AS auto_dec_raw,
        trim({c["decision_ground"]}) AS ground_raw,
        trim({c["incompatible_content_illegal"]}) AS inc_illegal,
        {c["uuid"]} AS uuid
    FROM {source}
),
p AS (
    SELECT *,
        coalesce(lower(platform_name) = lower($1), FALSE) AS is_platform,
        substr(ca_raw, 1, 10) AS created_day
    FROM raw
),
d AS (
    SELECT *,
        CASE WHEN is_platform THEN TRY_CAST(substr(app_raw, 1, 10) AS DATE) END AS app_date,
        CASE WHEN is_platform THEN TRY_CAST(substr(cd_raw, 1, 10) AS DATE) END AS content_date
    FROM p
),
j AS (
    SELECT *,
        CASE WHEN is_platform AND ct_raw <> ''
             THEN try(from_json(ct_raw, '["VARCHAR"]')) END AS cts,
        CASE WHEN is_platform AND kw_raw <> ''
             THEN try(from_json(kw_raw, '["VARCHAR"]')) END AS kws_parsed
    FROM d
),
l AS (
    SELECT *,
        cts IS NOT NULL AS ct_ok,
        (kw_raw IS NULL OR kw_raw = '' OR kws_parsed IS NOT NULL) AS kw_ok,
        coalesce(kws_parsed, []::VARCHAR[]) AS kws
    FROM j
),
r AS (
    SELECT *, CASE WHEN is_platform THEN {_rule_case(mapping)} END AS rule_idx FROM l
),
k AS (
    SELECT *,
        CASE
            WHEN NOT is_platform THEN 'other_platform'
            WHEN app_date IS NULL THEN 'invalid_application_date'
            WHEN NOT ct_ok THEN 'malformed_content_type'
            {product_when}
            WHEN NOT kw_ok THEN 'malformed_keywords'
            WHEN db_category IS NULL OR db_category NOT IN {_in_list(KNOWN_CATEGORIES)}
                THEN 'unknown_category'
            {ground_when}
            WHEN source_type IS NULL OR source_type NOT IN {_in_list(known_sources)}
                THEN 'unknown_source_type'
            {excluded_when}
            WHEN rule_idx IS NULL THEN 'unmapped'
            WHEN rule_idx IN ({{excluded_rules}}) THEN 'excluded_by_mapping'
            ELSE 'kept'
        END AS reason
    FROM r
),
f AS (
    SELECT
        reason,
        CASE WHEN reason <> 'other_platform' THEN db_category END AS s_db_category,
        CASE WHEN reason = 'kept' THEN rule_idx END AS k_rule,
        CASE WHEN reason = 'kept' THEN strftime(app_date, '%Y-%m') END AS k_period,
        CASE WHEN reason = 'kept' THEN {channel_case} END AS k_channel,
        CASE WHEN reason <> 'kept' THEN NULL
             WHEN ground_raw = 'DECISION_GROUND_ILLEGAL_CONTENT' THEN 'illegal_content'
             WHEN ground_raw = 'DECISION_GROUND_INCOMPATIBLE_CONTENT' THEN 'incompatible_content'
             ELSE 'unknown' END AS k_ground,
        CASE WHEN reason <> 'kept' THEN NULL
             WHEN auto_det_raw IN ('yes', 'no') THEN auto_det_raw
             ELSE 'unknown' END AS k_auto_det,
        CASE WHEN reason <> 'kept' THEN NULL
             WHEN auto_dec_raw = 'AUTOMATED_DECISION_FULLY' THEN 'fully'
             WHEN auto_dec_raw = 'AUTOMATED_DECISION_PARTIALLY' THEN 'partially'
             WHEN auto_dec_raw = 'AUTOMATED_DECISION_NOT_AUTOMATED' THEN 'not_automated'
             ELSE 'unknown' END AS k_auto_dec,
        CASE WHEN reason = 'kept' THEN date_diff('day', content_date, app_date) END AS k_age,
        created_day,
        CASE WHEN NOT is_platform THEN coalesce(platform_name, '') END AS o_platform,
        uuid
    FROM k
)
SELECT
    CASE
        WHEN GROUPING(reason) = 0 THEN 'status'
        WHEN GROUPING(k_ground) = 0 THEN 'breakdown'
        WHEN GROUPING(k_age) = 0 THEN 'age'
        WHEN GROUPING(created_day) = 0 THEN 'coverage'
        ELSE 'platforms'
    END AS gs,
    reason,
    s_db_category AS db_category,
    k_rule AS rule,
    k_period AS period,
    k_channel AS channel,
    k_ground AS ground,
    k_auto_det AS automated_detection,
    k_auto_dec AS automated_decision,
    k_age AS age_days,
    created_day AS created_date,
    o_platform AS platform_name,
    count(*) AS n,
    min(uuid) FILTER (WHERE reason NOT IN ('kept', 'other_platform')) AS example_uuid
FROM f
GROUP BY GROUPING SETS (
    (reason, s_db_category),
    (k_rule, k_period, k_channel, k_ground, k_auto_det, k_auto_dec),
    (k_rule, k_period, k_channel, k_age),
    (created_day),
    (o_platform)
)
""".replace(
        "{excluded_rules}",
        ", ".join(str(i) for i, rl in enumerate(mapping.rules) if rl.category is None) or "-1",
    )
