"""The arbitrary-style painting network's main run (train_runs/paint), resumable: run it again to continue.

    python tools/paint_run.py [--threads 2] [--minutes M] [--steps N]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from huafeng.train.paint import PaintTrainSettings, train_paint

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--minutes", type=float, default=None)
    ap.add_argument("--steps", type=int, default=PaintTrainSettings.steps)
    ap.add_argument("--init", default="photoreal")
    ap.add_argument("--out", default=str(ROOT / "train_runs" / "paint"))
    a = ap.parse_args()
    s = PaintTrainSettings(content_dir=str(DATA / "content"), style_dirs=(str(DATA / "styles"), str(DATA / "styles_more")),
                           out=a.out, steps=a.steps, minutes=a.minutes, threads=a.threads, init=a.init)
    print(train_paint(s))
