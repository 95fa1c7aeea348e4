"""Side-by-side speed measurements; results go to reports/benchmarks/ (``make bench``)."""
