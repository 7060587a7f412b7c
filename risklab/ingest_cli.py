"""The ``risklab ingest`` command: public DSA data -> risklab inputs.

Sub-commands::

    risklab ingest tdb FILES... --platform NAME --out DIR     Transparency Database dumps
    risklab ingest report FILES... --out DIR                  transparency-report templates
    risklab ingest build --listings F --assessment F --out DIR [--tdb DIR] [--report DIR]
    risklab ingest mapping [--out FILE]                       the default category mapping

Exit codes: 0 success; 2 invalid input (the message names file, row and column; no traceback);
1 anything else (e.g. DuckDB missing: ``pip install 'risklab[ingest]'``).

Wire into :mod:`risklab.cli` with :func:`add_ingest_parser` (on the sub-parsers) and
:func:`run_ingest` (the handler of ``ingest``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from risklab._cli_errors import EXIT_OK, run_guarded

__all__ = ["add_ingest_parser", "run_ingest"]


def _say(message: str) -> None:
    print(f"risklab ingest: {message}", file=sys.stderr, flush=True)


def add_ingest_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``ingest`` (with ``tdb``, ``report``, ``build``, ``mapping``) on ``subparsers``.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The object returned by ``parser.add_subparsers(dest="command")``.

    Returns
    -------
    argparse.ArgumentParser
        The ``ingest`` parser.
    """
    ingest = subparsers.add_parser(
        "ingest",
        help="turn public DSA data (Transparency Database, transparency reports) into inputs",
        description="Turn public DSA data into risklab inputs.",
    )
    sub = ingest.add_subparsers(dest="ingest_command", required=True)

    tdb = sub.add_parser(
        "tdb",
        help="aggregate DSA Transparency Database dumps for one platform",
        description="Aggregate statements of reasons (daily dumps: zipped CSV, full or light, "
        "either schema version, or Parquet) into detections per category, month and channel.",
    )
    tdb.add_argument("files", nargs="+", help="dump files (.zip, .csv, .csv.gz, .parquet)")
    tdb.add_argument("--platform", required=True, help="platform name as in platform_name")
    tdb.add_argument("--out", required=True, help="output directory (tdb_*.csv, tdb.json)")
    tdb.add_argument("--mapping", default=None, help="category mapping file (CSV or JSON)")
    tdb.add_argument(
        "--channel",
        action="append",
        default=[],
        metavar="SOURCE=CHANNEL",
        help="override a source_type -> channel mapping (CHANNEL empty: leave out); repeatable",
    )
    tdb.add_argument(
        "--all-content",
        action="store_true",
        help="keep statements about any content type, not only products",
    )
    tdb.add_argument(
        "--ground",
        choices=["all", "illegal"],
        default="all",
        help="'illegal': only decisions on legal grounds (default all)",
    )
    tdb.add_argument("--memory-limit", default="1GB", help="DuckDB memory limit (default 1GB)")
    tdb.add_argument("--threads", type=int, default=None, help="DuckDB threads")
    tdb.add_argument("--workdir", default=None, help="temporary directory for extraction")
    tdb.add_argument(
        "--no-hash", action="store_true", help="skip the SHA-256 of the inputs (one extra read)"
    )
    tdb.add_argument("--force", action="store_true", help="replace existing output files")
    tdb.add_argument("--quiet", action="store_true", help="no progress messages")

    rep = sub.add_parser(
        "report",
        help="read a transparency report (harmonised templates, CSV parts or XLSX)",
        description="Extract notices, own-initiative measures, automated-means accuracy, "
        "moderators, complaints and recipients from a transparency report filled in on the "
        "templates of Implementing Regulation (EU) 2024/2835.",
    )
    rep.add_argument("files", nargs="+", help="the report's CSV parts and/or XLSX workbook")
    rep.add_argument("--out", required=True, help="output directory (report_*.csv, report.json)")
    rep.add_argument("--service", default=None, help="service, if the report covers several")
    rep.add_argument("--mapping", default=None, help="category mapping file (CSV or JSON)")
    rep.add_argument(
        "--blank-as-zero",
        action="store_true",
        help="read empty figure cells of parts 3-6 as 0 (default: gaps)",
    )
    rep.add_argument("--force", action="store_true", help="replace existing output files")

    build = sub.add_parser(
        "build",
        help="combine listings, an assessment and ingested data into a submission",
        description="Build a submission directory (OUT/submission) and OUT/manifest.json.",
    )
    build.add_argument(
        "--listings",
        required=True,
        help="listings CSV (category, period, listings[, review_hours])",
    )
    build.add_argument(
        "--assessment",
        required=True,
        help="TOML with [platform] name, [scale], optional [[claims]], [policy]",
    )
    build.add_argument("--tdb", default=None, help="directory written by 'ingest tdb'")
    build.add_argument(
        "--report",
        default=None,
        nargs="+",
        help="directory written by 'ingest report', or the report's files",
    )
    build.add_argument("--out", required=True, help="output directory")
    build.add_argument(
        "--hours-per-moderator",
        type=float,
        default=115.0,
        help="review hours per moderator per month (default 115)",
    )
    build.add_argument(
        "--share-on-listings",
        type=float,
        default=1.0,
        help="share of moderation time on the assessed categories (default 1)",
    )
    build.add_argument(
        "--moderators",
        default="internal+external",
        choices=["internal+external", "internal", "linguistic"],
    )
    build.add_argument(
        "--allocation",
        default="listings",
        choices=["listings", "equal"],
        help="split review hours across categories by listings or equally",
    )
    build.add_argument("--no-appeals", action="store_true", help="do not write appeals.csv")
    build.add_argument(
        "--partial-reversals-overturned",
        action="store_true",
        help="count partially reversed removals as overturned",
    )
    build.add_argument(
        "--no-report-claims",
        action="store_true",
        help="do not take the report's recall as claimed detection rate",
    )
    build.add_argument("--force", action="store_true", help="replace existing output files")

    mapping = sub.add_parser("mapping", help="print or write the default category mapping")
    mapping.add_argument("--out", default=None, help="file to write (default: standard output)")
    mapping.add_argument("--force", action="store_true", help="replace an existing file")
    return ingest


def _channels(pairs: list[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--channel expects SOURCE=CHANNEL, got {pair!r}")
        src, ch = pair.split("=", 1)
        out[src.strip()] = ch.strip() or None
    return out


def _cmd_tdb(args: argparse.Namespace) -> int:
    from risklab.data.transparency_db import aggregate_tdb

    progress = None
    if not args.quiet:

        def progress(label: str, n: int) -> None:
            _say(f"read {label}: {n:,} statements")

    agg = aggregate_tdb(
        args.files,
        args.platform,
        mapping=args.mapping,
        channels=_channels(args.channel),
        product_only=not args.all_content,
        ground=args.ground,
        memory_limit=args.memory_limit,
        threads=args.threads,
        workdir=args.workdir,
        progress=progress,
        hash_inputs=not args.no_hash,
    )
    written = agg.to_directory(args.out, overwrite=args.force)
    s = agg.summary()
    skipped = ", ".join(f"{k} {v:,}" for k, v in s["skipped"].items()) or "none"
    excluded = ", ".join(f"{k} {v:,}" for k, v in s["excluded"].items()) or "none"
    print(
        f"{s['platform']}: {s['statements_read']:,} statements read from {s['tables']} tables; "
        f"{s['statements_of_platform']:,} of the platform; kept {s['kept']:,}; unmapped "
        f"{s['unmapped']:,}; excluded: {excluded}; skipped as malformed: {skipped}. "
        f"Months {', '.join(s['periods']) or 'none'}. Wrote {len(written)} files to {args.out}."
    )
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    from risklab.data.templates import read_transparency_report

    rep = read_transparency_report(
        args.files, service=args.service, mapping=args.mapping, blank_as_zero=args.blank_as_zero
    )
    written = rep.to_directory(args.out, overwrite=args.force)
    recall = rep.rate("recall")
    print(
        f"{rep.provider or 'provider ?'} / {rep.service or 'service ?'}, reporting period "
        f"{rep.reporting_period}: parts {', '.join(map(str, rep.parts))}; "
        f"{int(rep.detections['detected'].notna().sum())} category-channel figures, "
        f"{len(rep.gaps)} gaps; recall {recall if recall is not None else 'not reported'}; "
        f"moderators {rep.moderator_count() or 'not reported'}. Wrote {len(written)} files to "
        f"{args.out}."
    )
    for _, g in rep.gaps.head(10).iterrows():
        _say(f"gap: {g['item']} ({g['reason']})")
    if len(rep.gaps) > 10:
        _say(f"... and {len(rep.gaps) - 10} more gaps (report_gaps.csv)")
    return EXIT_OK


def _cmd_build(args: argparse.Namespace) -> int:
    from risklab.data.build import build_submission
    from risklab.data.templates import ReviewAssumptions

    review = ReviewAssumptions(
        hours_per_moderator_month=args.hours_per_moderator,
        share_on_listings=args.share_on_listings,
        moderators=args.moderators,
        allocation=args.allocation,
    )
    report = args.report
    if report is not None and len(report) == 1:
        report = report[0]
    res = build_submission(
        args.out,
        listings=args.listings,
        assessment=args.assessment,
        tdb=args.tdb,
        report=report,
        review=review,
        appeals=not args.no_appeals,
        partial_reversals_overturned=args.partial_reversals_overturned,
        claims_from_report=not args.no_report_claims,
        overwrite=args.force,
    )
    sub = res.submission
    print(
        f"wrote {res.directory} ({sub.platform.name}: {len(sub.categories)} categories x "
        f"{len(sub.periods)} months, channels {', '.join(sub.channels)}) and "
        f"{res.manifest_path}; check it with 'risklab validate {res.directory}'."
    )
    for w in res.warnings:
        _say(f"warning: {w}")
    return EXIT_OK


def _cmd_mapping(args: argparse.Namespace) -> int:
    from risklab.data.mappings import CategoryMapping

    text = CategoryMapping.default().to_csv()
    if args.out is None:
        sys.stdout.write(text)
        return EXIT_OK
    out = Path(args.out)
    if out.exists() and not args.force:
        raise FileExistsError(f"refusing to overwrite {out} (use --force)")
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}: edit it and pass it with --mapping")
    return EXIT_OK


def run_ingest(args: argparse.Namespace) -> int:
    """Run ``risklab ingest ...``; returns the exit code (0, 1 or 2), never raises.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed by a parser set up with :func:`add_ingest_parser`.

    Returns
    -------
    int
    """
    handler = {
        "tdb": _cmd_tdb,
        "report": _cmd_report,
        "build": _cmd_build,
        "mapping": _cmd_mapping,
    }[args.ingest_command]
    return run_guarded(
        handler,
        args,
        say=_say,
        invalid=(FileExistsError, ValueError),
        known_failures=(ImportError,),
    )
