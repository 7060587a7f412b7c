"""Child process of :func:`benchmarks.common.run_isolated`: run one case, write its result.

python -m benchmarks.child MODULE FUNCTION ARGS.json RESULT.json
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import warnings
from pathlib import Path


def main(argv: list[str]) -> int:
    module, function, args_path, out_path = argv
    from benchmarks.common import jsonable, peak_memory_mb

    kwargs = json.loads(Path(args_path).read_text())
    fn = getattr(importlib.import_module(f"benchmarks.{module}"), function)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fn(**kwargs)
    result = dict(result)
    result["wall_s"] = time.perf_counter() - start
    result["peak_memory"] = peak_memory_mb()
    Path(out_path).write_text(json.dumps(jsonable(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
