"""How the DSA's vocabularies map onto risklab: categories, keywords, sources, schema versions.

Everything here is plain data plus one small class, :class:`CategoryMapping`, so that the choices
behind an import are visible in one place, can be printed in a report, and can be replaced.

The DSA Transparency Database (statements of reasons, Art. 24(5) DSA) and the harmonised
transparency-report templates (Implementing Regulation (EU) 2024/2835) classify a moderation
decision by a **statement category** (``STATEMENT_CATEGORY_*``, one per statement) and optional
**keywords** (``KEYWORD_*``, a list per statement; called ``category_specification`` in the
database). risklab works with **product categories** of the platform's own listings grid
(``listings.csv``). :data:`DEFAULT_RULES` bridges the two; users override it with their own rules
(:meth:`CategoryMapping.from_file`).

Rule semantics (both importers)
-------------------------------
A rule is ``(db_category, keyword, category)``:

- ``db_category``: a statement category, or ``"*"`` for any;
- ``keyword``: a keyword the statement must carry, or ``None`` (empty in a file) for any keywords,
  including none;
- ``category``: the risklab category, or ``None`` (empty in a file) to *exclude* matching
  statements explicitly (they are reported as excluded, not as unmapped).

Rules are tried in order; the **first** matching rule decides, so every statement lands in at
most one risklab category (no double counting when a statement carries several keywords).
Statements no rule matches are reported as ``unmapped`` with their database category, so that
nothing disappears silently.

Schema versions
---------------
The database schema changed on 1 July 2025 ("version 2"): two categories were renamed, two
deleted, keywords renamed, added and deleted, and the field ``content_id_ean`` was added. Rules
are written with version-2 names; each rule also matches the version-1 names that were renamed to
its name (:data:`CATEGORY_RENAMES`, :data:`KEYWORD_RENAMES`) and the deleted version-1 names whose
closest version-2 successor it names (:data:`CATEGORY_SUCCESSORS`, :data:`KEYWORD_SUCCESSORS`).
So a series spanning the change keeps one set of risklab categories. A rule may also name a
version-1 value directly (e.g. ``KEYWORD_DANGEROUS_TOYS``) when only old data is analysed; since
rules are tried in order, put it before the rule of its successor.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from risklab.data.errors import Problem, SubmissionError
from risklab.dims import CHANNELS

__all__ = [
    "ANY_CATEGORY",
    "CATEGORY_RENAMES",
    "CATEGORY_SUCCESSORS",
    "CHANNEL_OF_SOURCE",
    "DEFAULT_RULES",
    "KEYWORDS_V2",
    "KEYWORD_RENAMES",
    "KEYWORD_SUCCESSORS",
    "KNOWN_CATEGORIES",
    "KNOWN_KEYWORDS",
    "MAPPING_COLUMNS",
    "PRODUCT_CONTENT_TYPE",
    "SCHEMA_V2_START",
    "STATEMENT_CATEGORIES_V1_ONLY",
    "STATEMENT_CATEGORIES_V2",
    "CategoryMapping",
    "MappingRule",
    "check_channel_map",
]

#: First day of version 2 of the database schema (statements submitted from this day on).
SCHEMA_V2_START = "2025-07-01"

#: ``content_type`` value marking a product listing; the importers keep statements carrying it.
PRODUCT_CONTENT_TYPE = "CONTENT_TYPE_PRODUCT"

#: Database ``source_type`` -> risklab detection channel (DESIGN.md §4.1).
#: ``SOURCE_TYPE_OTHER_NOTIFICATION`` ("other type of notification") is where statements that
#: follow orders of authorities (Art. 9 DSA) are recorded, but platforms also file other kinds of
#: notification there; mapping it to ``authority`` is a judgement — override it (e.g. to
#: ``"notice"``, or ``None`` to leave such statements out) with ``channels=``.
CHANNEL_OF_SOURCE: dict[str, str | None] = {
    "SOURCE_VOLUNTARY": "proactive",
    "SOURCE_ARTICLE_16": "notice",
    "SOURCE_TRUSTED_FLAGGER": "trusted_flagger",
    "SOURCE_TYPE_OTHER_NOTIFICATION": "authority",
}

#: Statement categories of schema version 2 (in force from 1 July 2025).
STATEMENT_CATEGORIES_V2: tuple[str, ...] = (
    "STATEMENT_CATEGORY_ANIMAL_WELFARE",
    "STATEMENT_CATEGORY_CONSUMER_INFORMATION",
    "STATEMENT_CATEGORY_CYBER_VIOLENCE",
    "STATEMENT_CATEGORY_CYBER_VIOLENCE_AGAINST_WOMEN",
    "STATEMENT_CATEGORY_DATA_PROTECTION_AND_PRIVACY_VIOLATIONS",
    "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH",
    "STATEMENT_CATEGORY_INTELLECTUAL_PROPERTY_INFRINGEMENTS",
    "STATEMENT_CATEGORY_NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS",
    "STATEMENT_CATEGORY_NOT_SPECIFIED_NOTICE",
    "STATEMENT_CATEGORY_NOT_SPECIFIED_ORDER",
    "STATEMENT_CATEGORY_OTHER_VIOLATION_TC",
    "STATEMENT_CATEGORY_PROTECTION_OF_MINORS",
    "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY",
    "STATEMENT_CATEGORY_SCAMS_AND_FRAUD",
    "STATEMENT_CATEGORY_SELF_HARM",
    "STATEMENT_CATEGORY_UNSAFE_AND_PROHIBITED_PRODUCTS",
    "STATEMENT_CATEGORY_VIOLENCE",
)

#: Version-1 categories renamed in version 2: old name -> new name.
CATEGORY_RENAMES: dict[str, str] = {
    "STATEMENT_CATEGORY_UNSAFE_AND_ILLEGAL_PRODUCTS": (
        "STATEMENT_CATEGORY_UNSAFE_AND_PROHIBITED_PRODUCTS"
    ),
    "STATEMENT_CATEGORY_SCOPE_OF_PLATFORM_SERVICE": "STATEMENT_CATEGORY_OTHER_VIOLATION_TC",
}

#: Version-1 categories deleted in version 2 -> the version-2 category that took over their
#: content (a judgement, not an official rename): adult sexual material is a keyword of
#: "other violation of terms and conditions" in version 2; non-consensual image sharing and
#: stalking moved to "cyber violence".
CATEGORY_SUCCESSORS: dict[str, str] = {
    "STATEMENT_CATEGORY_PORNOGRAPHY_OR_SEXUALIZED_CONTENT": "STATEMENT_CATEGORY_OTHER_VIOLATION_TC",
    "STATEMENT_CATEGORY_NON_CONSENSUAL_BEHAVIOUR": "STATEMENT_CATEGORY_CYBER_VIOLENCE",
}

#: Categories found only in version-1 data.
STATEMENT_CATEGORIES_V1_ONLY: tuple[str, ...] = (*CATEGORY_RENAMES, *CATEGORY_SUCCESSORS)

#: Keywords of schema version 2.
KEYWORDS_V2: tuple[str, ...] = (
    "KEYWORD_ADULT_SEXUAL_MATERIAL",
    "KEYWORD_AGE_SPECIFIC_RESTRICTIONS",
    "KEYWORD_AGE_SPECIFIC_RESTRICTIONS_MINORS",
    "KEYWORD_ANIMAL_HARM",
    "KEYWORD_BIOMETRIC_DATA_BREACH",
    "KEYWORD_BULLYING_AGAINST_GIRLS",
    "KEYWORD_CHILD_SEXUAL_ABUSE_MATERIAL",
    "KEYWORD_CHILD_SEXUAL_ABUSE_MATERIAL_DEEPFAKE",
    "KEYWORD_CONTENT_PROMOTING_EATING_DISORDERS",
    "KEYWORD_COORDINATED_HARM",
    "KEYWORD_COPYRIGHT_INFRINGEMENT",
    "KEYWORD_CYBER_BULLYING_INTIMIDATION",
    "KEYWORD_CYBER_HARASSMENT",
    "KEYWORD_CYBER_HARASSMENT_AGAINST_WOMEN",
    "KEYWORD_CYBER_INCITEMENT",
    "KEYWORD_CYBER_STALKING",
    "KEYWORD_CYBER_STALKING_AGAINST_WOMEN",
    "KEYWORD_DATA_FALSIFICATION",
    "KEYWORD_DEFAMATION",
    "KEYWORD_DESIGN_INFRINGEMENT",
    "KEYWORD_DISCRIMINATION",
    "KEYWORD_FEMALE_GENDERED_DISINFORMATION",
    "KEYWORD_GEOGRAPHICAL_REQUIREMENTS",
    "KEYWORD_GEOGRAPHIC_INDICATIONS_INFRINGEMENT",
    "KEYWORD_GOODS_SERVICES_NOT_PERMITTED",
    "KEYWORD_GROOMING_SEXUAL_ENTICEMENT_MINORS",
    "KEYWORD_HATE_SPEECH",
    "KEYWORD_HIDDEN_ADVERTISEMENT",
    "KEYWORD_HUMAN_EXPLOITATION",
    "KEYWORD_HUMAN_TRAFFICKING",
    "KEYWORD_ILLEGAL_ORGANIZATIONS",
    "KEYWORD_IMPERSONATION_ACCOUNT_HIJACKING",
    "KEYWORD_INAUTHENTIC_ACCOUNTS",
    "KEYWORD_INAUTHENTIC_LISTINGS",
    "KEYWORD_INAUTHENTIC_USER_REVIEWS",
    "KEYWORD_INCITEMENT_AGAINST_WOMEN",
    "KEYWORD_INCITEMENT_VIOLENCE_HATRED",
    "KEYWORD_INSUFFICIENT_INFORMATION_ON_TRADERS",
    "KEYWORD_LANGUAGE_REQUIREMENTS",
    "KEYWORD_MISINFORMATION_DISINFORMATION",
    "KEYWORD_MISLEADING_INFO_CONSUMER_RIGHTS",
    "KEYWORD_MISLEADING_INFO_GOODS_SERVICES",
    "KEYWORD_MISSING_PROCESSING_GROUND",
    "KEYWORD_NONCOMPLIANCE_PRICING",
    "KEYWORD_NON_CONSENSUAL_IMAGE_SHARING",
    "KEYWORD_NON_CONSENSUAL_IMAGE_SHARING_AGAINST_WOMEN",
    "KEYWORD_NON_CONSENSUAL_MATERIAL_DEEPFAKE",
    "KEYWORD_NON_CONSENSUAL_MATERIAL_DEEPFAKE_AGAINST_WOMEN",
    "KEYWORD_NUDITY",
    "KEYWORD_OTHER",
    "KEYWORD_PATENT_INFRINGEMENT",
    "KEYWORD_PHISHING",
    "KEYWORD_PROHIBITED_PRODUCTS",
    "KEYWORD_PYRAMID_SCHEMES",
    "KEYWORD_RIGHT_TO_BE_FORGOTTEN",
    "KEYWORD_RISK_ENVIRONMENTAL_DAMAGE",
    "KEYWORD_RISK_PUBLIC_HEALTH",
    "KEYWORD_SELF_MUTILATION",
    "KEYWORD_STALKING",
    "KEYWORD_SUICIDE",
    "KEYWORD_TERRORIST_CONTENT",
    "KEYWORD_TRADEMARK_INFRINGEMENT",
    "KEYWORD_TRADE_SECRET_INFRINGEMENT",
    "KEYWORD_TRAFFICKING_WOMEN_GIRLS",
    "KEYWORD_UNLAWFUL_SALE_ANIMALS",
    "KEYWORD_UNSAFE_CHALLENGES",
    "KEYWORD_UNSAFE_PRODUCTS",
    "KEYWORD_VIOLATION_EU_LAW",
    "KEYWORD_VIOLATION_NATIONAL_LAW",
)

#: Version-1 keywords renamed in version 2: old name -> new name.
KEYWORD_RENAMES: dict[str, str] = {
    "KEYWORD_ONLINE_BULLYING_INTIMIDATION": "KEYWORD_CYBER_BULLYING_INTIMIDATION",
    "KEYWORD_INSUFFICIENT_INFORMATION_TRADERS": "KEYWORD_INSUFFICIENT_INFORMATION_ON_TRADERS",
    "KEYWORD_DISINFORMATION": "KEYWORD_MISINFORMATION_DISINFORMATION",
    "KEYWORD_NON_CONSENSUAL_ITEMS_DEEPFAKE": "KEYWORD_NON_CONSENSUAL_MATERIAL_DEEPFAKE",
}

#: Version-1 keywords deleted in version 2 -> closest version-2 keyword (a judgement). Dangerous
#: toys and regulated goods were sub-kinds of unsafe or prohibited products.
KEYWORD_SUCCESSORS: dict[str, str] = {
    "KEYWORD_DANGEROUS_TOYS": "KEYWORD_UNSAFE_PRODUCTS",
    "KEYWORD_REGULATED_GOODS_SERVICES": "KEYWORD_PROHIBITED_PRODUCTS",
    "KEYWORD_MISINFORMATION": "KEYWORD_MISINFORMATION_DISINFORMATION",
    "KEYWORD_FOREIGN_INFORMATION_MANIPULATION": "KEYWORD_MISINFORMATION_DISINFORMATION",
    "KEYWORD_IMAGE_BASED_SEXUAL_ABUSE": "KEYWORD_NON_CONSENSUAL_IMAGE_SHARING",
    "KEYWORD_GENDER_BASED_VIOLENCE": "KEYWORD_INCITEMENT_AGAINST_WOMEN",
}

#: Every statement category of either schema version.
KNOWN_CATEGORIES: frozenset[str] = frozenset(STATEMENT_CATEGORIES_V2) | frozenset(
    STATEMENT_CATEGORIES_V1_ONLY
)
#: Every keyword of either schema version.
KNOWN_KEYWORDS: frozenset[str] = (
    frozenset(KEYWORDS_V2) | frozenset(KEYWORD_RENAMES) | frozenset(KEYWORD_SUCCESSORS)
)

#: Wildcard for ``db_category`` in a rule.
ANY_CATEGORY = "*"

_UNSAFE = "STATEMENT_CATEGORY_UNSAFE_AND_PROHIBITED_PRODUCTS"
_TC = "STATEMENT_CATEGORY_OTHER_VIOLATION_TC"

#: The default rules ``(db_category, keyword, risklab category)``, tried in order.
#:
#: The database cannot tell medicines from dietary supplements or toys from electronics: it
#: records *why* content is illegal, not what the product is. The default therefore maps onto
#: the product-risk categories it can distinguish; platforms' own product categories need the
#: platform's data (Art. 40 requests) or a user mapping. Choices:
#:
#: - trader-information keywords belong to consumer information in version 2 (they sat under
#:   unsafe products in version 1), hence first;
#: - prohibited/restricted products (version-1 "regulated goods and services" included) apart
#:   from unsafe/non-compliant products (version-1 "dangerous toys" included, so that a series
#:   spanning 1 July 2025 keeps one category);
#: - "risk for public health" under public security -> health products (fake medicines,
#:   supplements); other public-security keywords are not about products and stay unmapped;
#: - every intellectual-property infringement on a product listing -> counterfeits;
#: - age-restricted items under protection of minors, and adult sexual material or age
#:   restrictions under terms-and-conditions grounds -> adult products; goods the terms do not
#:   permit -> prohibited products;
#: - consumer-information infringements, scams and frauds (inauthentic listings) and unlawful
#:   sale of animals get their own categories.
DEFAULT_RULES: tuple[tuple[str, str | None, str | None], ...] = (
    (ANY_CATEGORY, "KEYWORD_INSUFFICIENT_INFORMATION_ON_TRADERS", "consumer_information"),
    (_UNSAFE, "KEYWORD_PROHIBITED_PRODUCTS", "prohibited_products"),
    (_UNSAFE, None, "unsafe_products"),
    (
        "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY",
        "KEYWORD_RISK_PUBLIC_HEALTH",
        "health_products",
    ),
    ("STATEMENT_CATEGORY_INTELLECTUAL_PROPERTY_INFRINGEMENTS", None, "counterfeits"),
    (
        "STATEMENT_CATEGORY_PROTECTION_OF_MINORS",
        "KEYWORD_AGE_SPECIFIC_RESTRICTIONS_MINORS",
        "adult_products",
    ),
    (_TC, "KEYWORD_ADULT_SEXUAL_MATERIAL", "adult_products"),
    (_TC, "KEYWORD_AGE_SPECIFIC_RESTRICTIONS", "adult_products"),
    (_TC, "KEYWORD_GOODS_SERVICES_NOT_PERMITTED", "prohibited_products"),
    ("STATEMENT_CATEGORY_CONSUMER_INFORMATION", None, "consumer_information"),
    ("STATEMENT_CATEGORY_SCAMS_AND_FRAUD", None, "scam_listings"),
    ("STATEMENT_CATEGORY_ANIMAL_WELFARE", "KEYWORD_UNLAWFUL_SALE_ANIMALS", "animals"),
)

#: Columns of a mapping file (CSV) and keys of a mapping rule (JSON).
MAPPING_COLUMNS: tuple[str, ...] = ("db_category", "keyword", "category")


@dataclass(frozen=True)
class MappingRule:
    """One rule of a :class:`CategoryMapping`.

    Attributes
    ----------
    db_category : str
        Statement category (either schema version) or ``"*"`` for any.
    keyword : str or None
        Keyword the statement must carry; None for any keywords (including none).
    category : str or None
        risklab product category; None excludes matching statements explicitly.
    """

    db_category: str
    keyword: str | None
    category: str | None

    def db_categories(self) -> frozenset[str] | None:
        """Database categories this rule matches, version-1 aliases included (None: any)."""
        if self.db_category == ANY_CATEGORY:
            return None
        return frozenset({self.db_category}) | _aliases(
            self.db_category, CATEGORY_RENAMES, CATEGORY_SUCCESSORS
        )

    def keywords(self) -> frozenset[str] | None:
        """Keywords this rule matches, version-1 aliases included (None: any)."""
        if self.keyword is None:
            return None
        return frozenset({self.keyword}) | _aliases(
            self.keyword, KEYWORD_RENAMES, KEYWORD_SUCCESSORS
        )


def _aliases(name: str, renames: dict[str, str], successors: dict[str, str]) -> frozenset[str]:
    return frozenset(old for old, new in (*renames.items(), *successors.items()) if new == name)


class CategoryMapping:
    """Ordered rules mapping database categories and keywords to risklab categories.

    Parameters
    ----------
    rules : iterable of MappingRule, tuple or dict
        Rules in priority order; a tuple is ``(db_category, keyword, category)``, a dict has
        those keys. Empty strings mean None for ``keyword`` and ``category``.
    source : str, default "<rules>"
        Where the rules came from (a file name), used in error messages.

    Raises
    ------
    SubmissionError
        If a rule names an unknown database category or keyword, or a category name is not a
        clean non-empty string.

    Examples
    --------
    >>> m = CategoryMapping.default()
    >>> m.classify("STATEMENT_CATEGORY_UNSAFE_AND_ILLEGAL_PRODUCTS", ["KEYWORD_DANGEROUS_TOYS"])
    ('mapped', 'unsafe_products')
    """

    def __init__(
        self,
        rules: Iterable[MappingRule | Sequence[str | None] | dict],
        *,
        source: str = "<rules>",
    ) -> None:
        self.source = source
        parsed: list[MappingRule] = []
        problems: list[Problem] = []
        for i, raw in enumerate(rules):
            row = i + 2  # as in a CSV file: header is line 1
            rule, rule_problems = _parse_rule(raw, source, row)
            problems += rule_problems
            if rule is not None:
                parsed.append(rule)
        if not parsed and not problems:
            problems.append(Problem(source, None, None, "a mapping needs at least one rule"))
        if problems:
            raise SubmissionError(problems, source)
        self.rules: tuple[MappingRule, ...] = tuple(parsed)

    # --------------------------------------------------------------------------- builders
    @classmethod
    def default(cls) -> CategoryMapping:
        """The documented default mapping (:data:`DEFAULT_RULES`)."""
        return cls(DEFAULT_RULES, source="risklab default mapping")

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> CategoryMapping:
        """Read rules from a CSV (columns ``db_category,keyword,category``) or JSON file.

        A JSON file holds a list of objects with the keys ``db_category``, ``keyword`` and
        ``category`` (``null`` or ``""`` for none). In a CSV an empty ``keyword`` means any
        keywords and an empty ``category`` excludes the matching statements.

        Parameters
        ----------
        path : path-like

        Returns
        -------
        CategoryMapping
        """
        path = Path(path)
        name = path.name
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise SubmissionError([Problem(name, None, None, f"cannot read: {exc}")], name) from exc
        if path.suffix.lower() == ".json":
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                msg = f"not valid JSON: {exc.msg}"
                raise SubmissionError([Problem(name, exc.lineno, None, msg)], name) from exc
            if not isinstance(data, list):
                msg = "must be a JSON list of rules (objects with db_category, keyword, category)"
                raise SubmissionError([Problem(name, None, None, msg)], name)
            return cls(data, source=name)
        reader = csv.DictReader(io.StringIO(text))
        header = reader.fieldnames or []
        missing = [c for c in MAPPING_COLUMNS if c not in header]
        unknown = [c for c in header if c not in MAPPING_COLUMNS]
        problems = [Problem(name, 1, c, "missing required column") for c in missing]
        problems += [
            Problem(name, 1, c, f"unknown column; expected {', '.join(MAPPING_COLUMNS)}")
            for c in unknown
        ]
        if problems:
            raise SubmissionError(problems, name)
        return cls(list(reader), source=name)

    # ---------------------------------------------------------------------------- queries
    @property
    def categories(self) -> list[str]:
        """risklab categories the rules can produce, in first-appearance order."""
        seen: dict[str, None] = {}
        for rule in self.rules:
            if rule.category is not None:
                seen.setdefault(rule.category, None)
        return list(seen)

    def classify(self, db_category: str, keywords: Iterable[str] = ()) -> tuple[str, str | None]:
        """Classify one statement (reference implementation of the rule semantics).

        Parameters
        ----------
        db_category : str
            The statement's category (either schema version).
        keywords : iterable of str
            Its keywords (``category_specification``).

        Returns
        -------
        tuple of (str, str or None)
            ``("mapped", category)``, ``("excluded", None)`` or ``("unmapped", None)``.
        """
        kws = set(keywords)
        for rule in self.rules:
            cats, rule_kws = rule.db_categories(), rule.keywords()
            if cats is not None and db_category not in cats:
                continue
            if rule_kws is not None and not (rule_kws & kws):
                continue
            return ("mapped", rule.category) if rule.category is not None else ("excluded", None)
        return "unmapped", None

    def to_records(self) -> list[dict[str, str | None]]:
        """The rules as a list of dicts (JSON-ready)."""
        return [
            {"db_category": r.db_category, "keyword": r.keyword, "category": r.category}
            for r in self.rules
        ]

    def to_csv(self) -> str:
        """The rules as CSV text in the format :meth:`from_file` reads."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(MAPPING_COLUMNS)
        for r in self.rules:
            writer.writerow([r.db_category, r.keyword or "", r.category or ""])
        return buf.getvalue()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CategoryMapping):
            return NotImplemented
        return self.rules == other.rules

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<CategoryMapping {len(self.rules)} rules -> {', '.join(self.categories)}>"


def _clean(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        return str(value)
    return value if value.strip() else None


def _parse_rule(raw: object, source: str, row: int) -> tuple[MappingRule | None, list[Problem]]:
    if isinstance(raw, MappingRule):
        raw = (raw.db_category, raw.keyword, raw.category)
    if isinstance(raw, dict):
        unknown = sorted(set(raw) - set(MAPPING_COLUMNS) - {None})
        if unknown:
            msg = f"unknown key(s) {', '.join(map(repr, unknown))}; expected {MAPPING_COLUMNS}"
            return None, [Problem(source, row, None, msg)]
        values = [raw.get(k) for k in MAPPING_COLUMNS]
    elif isinstance(raw, (tuple, list)) and len(raw) == 3:
        values = list(raw)
    else:
        msg = f"a rule is (db_category, keyword, category), got {raw!r}"
        return None, [Problem(source, row, None, msg)]
    db_category, keyword, category = (_clean(v) for v in values)
    problems: list[Problem] = []
    if db_category is None:
        problems.append(Problem(source, row, "db_category", "empty; use '*' for any category"))
    elif db_category != ANY_CATEGORY and db_category not in KNOWN_CATEGORIES:
        msg = f"unknown statement category {db_category!r} (see risklab.data.mappings)"
        problems.append(Problem(source, row, "db_category", msg))
    if keyword is not None and keyword not in KNOWN_KEYWORDS:
        msg = f"unknown keyword {keyword!r} (see risklab.data.mappings)"
        problems.append(Problem(source, row, "keyword", msg))
    if category is not None and (category != category.strip() or "," in category):
        msg = f"risklab category {category!r} may not have surrounding spaces or commas"
        problems.append(Problem(source, row, "category", msg))
    if problems:
        return None, problems
    assert db_category is not None
    return MappingRule(db_category, keyword, category), []


def check_channel_map(channels: dict[str, str | None] | None) -> dict[str, str | None]:
    """The source-type -> channel map with user overrides applied and checked.

    Parameters
    ----------
    channels : dict, optional
        Overrides of :data:`CHANNEL_OF_SOURCE` (``None`` leaves a source type out).

    Returns
    -------
    dict of str to str or None

    Raises
    ------
    ValueError
        If a key is not a known source type or a value not a channel.
    """
    merged = dict(CHANNEL_OF_SOURCE)
    for src, channel in (channels or {}).items():
        if src not in CHANNEL_OF_SOURCE:
            raise ValueError(
                f"unknown source_type {src!r}; expected one of {', '.join(CHANNEL_OF_SOURCE)}"
            )
        if channel is not None and channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}; expected one of {', '.join(CHANNELS)}")
        merged[src] = channel
    return merged
