"""Ship a snapshot of the painting network's run into the package: weights, curves and samples.

    python tools/ship_arbitrary.py train_runs/paint

The model card (huafeng/weights/arbitrary.md) is written by hand from the run's figures; this prints them.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from huafeng import weights  # noqa: E402

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    a = ap.parse_args()
    run = Path(a.run)
    tensors, meta = weights.load_file(run / "paint.safetensors")
    out = weights.WEIGHTS_DIR / "arbitrary.safetensors"
    info = weights.save_file(tensors, out, {**meta, "note": "the arbitrary method's painting network (a snapshot "
                                            "of a run in training; see arbitrary.md)"})
    shutil.copyfile(run / "curves.png", weights.WEIGHTS_DIR / "arbitrary.curves.png")
    from PIL import Image

    Image.open(run / "samples.jpg").convert("RGB").save(weights.WEIGHTS_DIR / "arbitrary.samples.jpg", quality=85)
    log = json.loads((run / "log.json").read_text())["log"]
    evals = [r for r in log if "eval_ms" in r]
    print(json.dumps({"shipped": info, "steps": meta.get("steps"), "minutes": meta.get("minutes"),
                      "first_eval": evals[0] if evals else None, "last_eval": evals[-1] if evals else None}, indent=1))
