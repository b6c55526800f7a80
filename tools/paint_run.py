"""The arbitrary-style painting network's main run (train_runs/paint), resumable: run it again to continue.

    python tools/paint_run.py [--threads 2] [--minutes M] [--steps N] [--device cuda --data gpu_data]

``--data`` is a folder holding content/ and styles*/ (default: ../shared/data; tools/pack_paint_data.py
writes a small one for a GPU machine, see tools/gpu_paint.sh).
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
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data", default=str(DATA))
    # the main run uses WCT since the pilots (train_runs/paint-adain = pilot A, AdaIN; see huafeng/weights/arbitrary.md)
    ap.add_argument("--transform", default="wct", choices=("adain", "wct"))
    for w in ("content", "ms", "gram"):
        ap.add_argument(f"--{w}-weight", type=float, default=getattr(PaintTrainSettings, f"{w}_weight"))
    # the feature term is on in the main run from step 1000 (pilot train_runs/paint-feat1; see the model card)
    ap.add_argument("--feature-weight", type=float, default=1.0)
    a = ap.parse_args()
    data = Path(a.data)
    styles = tuple(str(p) for p in sorted(data.glob("styles*")) if p.is_dir())
    s = PaintTrainSettings(content_dir=str(data / "content"), style_dirs=styles, out=a.out, steps=a.steps,
                           minutes=a.minutes, threads=a.threads, init=a.init, device=a.device,
                           transform=a.transform, content_weight=a.content_weight, ms_weight=a.ms_weight,
                           gram_weight=a.gram_weight, feature_weight=a.feature_weight)
    print(train_paint(s))
