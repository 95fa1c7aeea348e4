"""Side-by-side speed and memory measurements (issue 7), written to ``reports/benchmarks.json``
and ``reports/benchmarks.md``: ``make bench`` (``python -m benchmarks``; generation, MD vs
generation, MSD, windows, memory, training) and ``make bench-e2e``
(``python -m benchmarks.end_to_end``; the ML-GLE route against the MD that gives D to the same
precision, both run on the default system, issue 16)."""
