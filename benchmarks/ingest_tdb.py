"""Benchmark: aggregate a generated Transparency Database dump of N statements (default 10 M).

Usage::

    python benchmarks/ingest_tdb.py [--rows N] [--workdir DIR] [--threads K] [--memory-limit 1GB]

The dump is written the way the Commission publishes them since April 2024: one outer zip
holding inner zips of up to 1 M statements, each holding CSV parts of 100 000 (schema version 2,
"light" variant). By default a fifth of the statements are of the platform studied, as in a
global dump (``--platform-share 1`` for a per-platform dump); half of the platform's statements
are about products. Generation is chunked (one 100 000-row part in memory at a time) and is not
timed. The aggregation runs in a child process, so that its peak resident memory (``ru_maxrss``
of the child) is measured alone. Rows per second are statements read over the wall-clock seconds
of :func:`risklab.data.transparency_db.aggregate_tdb` (extraction of every member included), and
over the child's CPU seconds, which depend less on other load on the machine (the 1-minute load
average is printed too).

Not run by the test suite (a tiny smoke test is: ``tests/test_ingest_tdb.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

PLATFORM = "BenchMarket"
PART_ROWS = 100_000
INNER_ROWS = 1_000_000

LIGHT_V2_COLUMNS = [
    "uuid",
    "decision_visibility",
    "decision_visibility_other",
    "end_date_visibility_restriction",
    "decision_monetary",
    "decision_monetary_other",
    "end_date_monetary_restriction",
    "decision_provision",
    "end_date_service_restriction",
    "decision_account",
    "end_date_account_restriction",
    "account_type",
    "decision_ground",
    "decision_ground_reference_url",
    "illegal_content_legal_ground",
    "incompatible_content_ground",
    "incompatible_content_illegal",
    "category",
    "category_addition",
    "category_specification",
    "category_specification_other",
    "content_type",
    "content_type_other",
    "content_language",
    "content_date",
    "content_id_ean",
    "application_date",
    "source_type",
    "source_identity",
    "automated_detection",
    "automated_decision",
    "platform_name",
    "platform_uid",
    "created_at",
]

_CATEGORIES = [
    ("STATEMENT_CATEGORY_UNSAFE_AND_PROHIBITED_PRODUCTS", ["KEYWORD_UNSAFE_PRODUCTS"]),
    ("STATEMENT_CATEGORY_UNSAFE_AND_PROHIBITED_PRODUCTS", ["KEYWORD_PROHIBITED_PRODUCTS"]),
    ("STATEMENT_CATEGORY_INTELLECTUAL_PROPERTY_INFRINGEMENTS", ["KEYWORD_TRADEMARK_INFRINGEMENT"]),
    ("STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY", ["KEYWORD_RISK_PUBLIC_HEALTH"]),
    ("STATEMENT_CATEGORY_SCAMS_AND_FRAUD", ["KEYWORD_INAUTHENTIC_LISTINGS"]),
    ("STATEMENT_CATEGORY_OTHER_VIOLATION_TC", ["KEYWORD_GOODS_SERVICES_NOT_PERMITTED"]),
    ("STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH", ["KEYWORD_HATE_SPEECH"]),
    ("STATEMENT_CATEGORY_OTHER_VIOLATION_TC", []),
]
_SOURCES = [
    "SOURCE_VOLUNTARY",
    "SOURCE_ARTICLE_16",
    "SOURCE_TRUSTED_FLAGGER",
    "SOURCE_TYPE_OTHER_NOTIFICATION",
]
_SOURCE_P = [0.85, 0.12, 0.02, 0.01]


def _q(s: str) -> str:
    return '"' + s.replace('"', '""') + '"' if any(ch in s for ch in ',"\n') else s


def _line_pool(rng: np.random.Generator, size: int, day: str, platform_share: float) -> list[str]:
    """Distinct CSV lines (without the leading uuid) to sample statements from."""
    pool = []
    for _ in range(size):
        own = rng.random() < platform_share
        platform = PLATFORM if own else f"Other{rng.integers(1, 40)}"
        cat, kws = _CATEGORIES[rng.integers(len(_CATEGORIES))]
        product = own and rng.random() < 0.5
        ctype = '["CONTENT_TYPE_PRODUCT"]' if product else '["CONTENT_TYPE_TEXT"]'
        src = _SOURCES[rng.choice(4, p=_SOURCE_P)]
        auto = rng.random() < 0.7
        app_day = int(rng.integers(1, 29))
        age = int(rng.exponential(40))
        cdate = np.datetime64(f"2025-09-{app_day:02d}") - np.timedelta64(age, "D")
        values = {
            "decision_visibility": '["DECISION_VISIBILITY_CONTENT_REMOVED"]',
            "account_type": "ACCOUNT_TYPE_BUSINESS",
            "decision_ground": "DECISION_GROUND_INCOMPATIBLE_CONTENT",
            "incompatible_content_ground": "Restricted products policy, section 4.2",
            "incompatible_content_illegal": "Yes" if rng.random() < 0.3 else "No",
            "category": cat,
            "category_addition": "[]",
            "category_specification": json.dumps(kws),
            "content_type": ctype,
            "content_language": "DE",
            "content_date": f"{cdate} 00:00:00",
            "content_id_ean": str(rng.integers(10**12, 10**13)) if product else "",
            "application_date": f"2025-09-{app_day:02d} 00:00:00",
            "source_type": src,
            "automated_detection": "Yes" if auto else "No",
            "automated_decision": "AUTOMATED_DECISION_FULLY"
            if auto
            else "AUTOMATED_DECISION_NOT_AUTOMATED",
            "platform_name": platform,
            "platform_uid": f"puid-{rng.integers(10**9)}",
            "created_at": f"{day} {rng.integers(0, 24):02d}:{rng.integers(0, 60):02d}:00",
        }
        pool.append(",".join(_q(values.get(c, "")) for c in LIGHT_V2_COLUMNS[1:]))
    return pool


def generate_dump(
    path: Path, rows: int, *, seed: int = 20250901, workdir: Path, platform_share: float = 0.2
) -> Path:
    """Write a zip of zips of 100 000-row CSV parts holding ``rows`` statements.

    Memory is bounded by one part; disk by the output plus one inner zip being built.
    """
    rng = np.random.default_rng(seed)
    day = "2025-09-30"
    pool = _line_pool(rng, 20_000, day, platform_share)
    header = ",".join(LIGHT_V2_COLUMNS) + "\n"
    stem = f"sor-global-{day}-light"
    written = 0
    inner_index = 0
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as outer:
        while written < rows:
            inner_path = workdir / f"{stem}-{inner_index:05d}.csv.zip"
            with zipfile.ZipFile(
                inner_path,
                "w",
                compression=zipfile.ZIP_DEFLATED,
                compresslevel=1,
                allowZip64=True,
            ) as inner:
                part = 0
                while part * PART_ROWS < INNER_ROWS and written < rows:
                    n = min(PART_ROWS, rows - written)
                    idx = rng.integers(len(pool), size=n)
                    body = "\n".join(
                        f"{written + i:032x},{pool[j]}" for i, j in enumerate(idx.tolist())
                    )
                    name = f"{stem}-{inner_index:05d}-{part:05d}.csv"
                    inner.writestr(name, header + body + "\n")
                    written += n
                    part += 1
            outer.write(inner_path, inner_path.name)
            inner_path.unlink()
            inner_index += 1
    return path


def _aggregate_child(dump: str, workdir: str, threads: int | None, memory_limit: str) -> None:
    from risklab.data.transparency_db import aggregate_tdb

    start, cpu0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    agg = aggregate_tdb(
        [dump],
        PLATFORM,
        workdir=workdir,
        threads=threads,
        memory_limit=memory_limit,
        hash_inputs=False,
    )
    seconds, cpu1 = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    summary = agg.summary()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu": cpu,
                "read": summary["statements_read"],
                "kept": summary["kept"],
            }
        )
    )


def run(
    rows: int,
    *,
    workdir: Path | None,
    threads: int | None,
    memory_limit: str,
    platform_share: float = 0.2,
) -> dict:
    """Generate a dump of ``rows`` statements, aggregate it in a child process, measure."""
    tmp = Path(tempfile.mkdtemp(prefix="risklab-bench-", dir=workdir))
    try:
        dump = tmp / "sor-global-2025-09-30-light.zip"
        t0 = time.perf_counter()
        generate_dump(dump, rows, workdir=tmp, platform_share=platform_share)
        gen_s = time.perf_counter() - t0
        cmd = [
            sys.executable,
            __file__,
            "--child",
            str(dump),
            "--workdir",
            str(tmp),
            "--memory-limit",
            memory_limit,
        ]
        if threads is not None:
            cmd += ["--threads", str(threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"aggregation failed:\n{proc.stderr}")
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        child = json.loads(proc.stdout.strip().splitlines()[-1])
        cpu = child["cpu"]
        return {
            "rows": child["read"],
            "kept": child["kept"],
            "dump_bytes": dump.stat().st_size,
            "generate_seconds": round(gen_s, 1),
            "aggregate_seconds": round(child["seconds"], 2),
            "rows_per_second": round(child["read"] / child["seconds"]),
            "child_cpu_seconds": round(cpu, 1),
            "rows_per_cpu_second": round(child["read"] / cpu),
            "peak_rss_mib": round(peak_kib / 1024, 1),
            "platform_share": platform_share,
            "load_average_1min": round(os.getloadavg()[0], 2),
            "threads": threads or os.cpu_count(),
            "memory_limit": memory_limit,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--workdir", default=None, help="where to write the generated dump")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--memory-limit", default="1GB")
    parser.add_argument(
        "--platform-share",
        type=float,
        default=0.2,
        help="share of statements of the platform studied (1.0: a per-platform dump)",
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _aggregate_child(args.child, args.workdir, args.threads, args.memory_limit)
        return 0
    workdir = Path(args.workdir) if args.workdir else None
    result = run(
        args.rows,
        workdir=workdir,
        threads=args.threads,
        memory_limit=args.memory_limit,
        platform_share=args.platform_share,
    )
    print(json.dumps(result, indent=2))
    print(
        f"{result['rows']:,} statements in {result['aggregate_seconds']} s: "
        f"{result['rows_per_second']:,} rows/s ({result['rows_per_cpu_second']:,} per CPU-second), "
        f"peak RSS {result['peak_rss_mib']} MiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
