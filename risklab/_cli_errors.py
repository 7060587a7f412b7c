"""How command handlers' exceptions become exit codes and messages (shared by all sub-commands).

A ``SubmissionError`` prints its own paragraph and exits 2; other *invalid input* exceptions
print ``error: ...`` and exit 2; *known failures* print ``error: ...`` and exit 1; an interrupt
exits 1 with a note; anything else exits 1 with a one-line message (a traceback only when
``RISKLAB_DEBUG`` is set). No traceback reaches the user otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable

EXIT_OK, EXIT_ERROR, EXIT_INVALID, EXIT_UNCONVERGED = 0, 1, 2, 3


def run_guarded(
    handler: Callable[[argparse.Namespace], int],
    args: argparse.Namespace,
    *,
    say: Callable[[str], None],
    invalid: tuple[type[BaseException], ...] = (),
    known_failures: tuple[type[BaseException], ...] = (),
    interrupted: str = "interrupted",
) -> int:
    """Run ``handler(args)`` and map any exception to an exit code and a message."""
    from risklab.data.errors import SubmissionError

    try:
        return handler(args)
    except SubmissionError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_INVALID
    except invalid as exc:
        say(f"error: {exc}")
        return EXIT_INVALID
    except known_failures as exc:
        say(f"error: {exc}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        say(interrupted)
        return EXIT_ERROR
    except Exception as exc:
        if os.environ.get("RISKLAB_DEBUG"):
            traceback.print_exc()
        say(f"unexpected error ({type(exc).__name__}): {exc}. Set RISKLAB_DEBUG=1 for details.")
        return EXIT_ERROR
