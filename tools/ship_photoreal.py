"""Ship a trained photoreal run (the WCT decoders) into the package: weights, curves and a model card.

    python tools/ship_photoreal.py train_runs/photoreal [--note "..."]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from huafeng import weights  # noqa: E402

CARD = """# photoreal.safetensors: reconstruction decoders for photorealistic transfer (multi-level WCT)

- **What:** four decoders (L1 … L4) that invert the frozen, shipped Lite0 encoder at the post-ReLU6 outputs of
  `stem`, `block1_expand`, `block3_expand` and `block5_expand` ({params:,} parameters in all). At inference the
  whitening-colouring transform (Li et al. 2017) gives each level's content features the style picture's
  covariance, coarse to fine (L4 → L1): the photo takes that picture's colours and tone and keeps its own detail
  (the photoreal method, `huafeng/methods/photoreal.py`; not a painting look).
- **Training:** `huafeng train photoreal` (reconstruction only: L1 pixel loss + {fw} × relative feature loss at each
  decoder's own level), Adam {lr}, batches of {batch} crops of {crop} px, {paint:.0%} of them augmented crops of
  the training paintings. **{steps} steps, {minutes} minutes** of CPU time on 2 shared cores (other jobs ran beside
  it), this project's machine, no GPU.
- **Data:** content photos from the project's shared set (Kodak PhotoCD 24, COCO 2017 train/val 128+128 with
  per-image Flickr licences, as is customary for style-transfer training, scikit-image/scikit-learn samples and
  MATE desktop photos); {held} photos held out for the check below. Paintings: the shared public-domain set
  except {n_held} held out of training ({held_styles}).
- **Check (held-out photos, 256 px crops, reconstruction PSNR, dB):** {psnr}.
- **Status:** {note}
- **Curves:** `photoreal.curves.png` (L1 reconstruction loss per level).
- **Licence:** the weights are huafeng's own (MIT); the encoder is EfficientNet-Lite0 (Apache-2.0, see lite0.md).
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--note", default="experimental: trained far less than it needs; training continues.")
    args = ap.parse_args()
    run = Path(args.run)
    tensors, meta = weights.load_file(run / "decoders.safetensors")
    log = json.loads((run / "log.json").read_text())
    s, rows = log["settings"], log["log"]
    evals = [r for r in rows if "L1_psnr" in r]
    last = evals[-1] if evals else {}
    psnr = ", ".join(f"{k[:2]} {last[k]}" for k in sorted(last) if k.endswith("_psnr")) + f" (at step {last.get('step')})"
    meta = {**meta, "license": "MIT", "data": "shared photos + public-domain paintings", "note": args.note}
    weights.save_file(tensors, weights.WEIGHTS_DIR / "photoreal.safetensors", meta)
    shutil.copyfile(run / "curves.png", weights.WEIGHTS_DIR / "photoreal.curves.png")
    card = CARD.format(params=sum(t.numel() for t in tensors.values()), fw=s["feature_weight"], lr=s["lr"],
                       batch=s["batch"], crop=s["crop"], paint=s["painting_fraction"], steps=meta["steps"],
                       minutes=meta["minutes"], held=s["eval_photos"], n_held=len(s["held_out_styles"]),
                       held_styles=", ".join(s["held_out_styles"]), psnr=psnr, note=args.note)
    (weights.WEIGHTS_DIR / "photoreal.md").write_text(card)
    print(card)


if __name__ == "__main__":
    main()
