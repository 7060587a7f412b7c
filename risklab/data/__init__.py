"""Read, validate and represent a platform's risk-assessment submission.

The submission format is described in ``docs/submission-format.md`` (DESIGN.md §4.1).
"""

from risklab.data.build import BuildResult, build_submission
from risklab.data.errors import Problem, SubmissionError
from risklab.data.submission import (
    Claim,
    Platform,
    Policy,
    Scale,
    Submission,
    load_submission,
)

__all__ = [
    "BuildResult",
    "Claim",
    "Platform",
    "Policy",
    "Problem",
    "Scale",
    "Submission",
    "SubmissionError",
    "build_submission",
    "load_submission",
]
