"""risklab's benchmark suite (``make bench``; not part of the test suite). See README.md."""
