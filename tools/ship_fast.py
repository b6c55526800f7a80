"""Ship a trained per-style network into the gallery: weights, curves, sample and a model card.

    python tools/ship_fast.py runs/style-starry-night [--note "..."]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from huafeng import weights  # noqa: E402
from huafeng.image import load_image, save_image  # noqa: E402
from huafeng.styles import sample_photo  # noqa: E402

CARD = """# fast-{name}.safetensors: per-style network for {painting}

- **Painting:** {painting} (public domain; see huafeng/assets/SOURCES.md and the shared data's SOURCES.md).
- **Network:** slim TransformerNet (Johnson et al. 2016): channels {channels}, {blocks} residual blocks, instance
  norm, nearest-upsample + conv, sigmoid output; {params:,} parameters.
- **Training:** `huafeng train style` with a Lite0 perceptual loss (content weight {cw}, style weight {sw}, TV {tv}),
  batches of {batch} random {crop} px crops of the shared content photos (Kodak 24, COCO 2017 subsets with
  per-image Flickr licences as customary, scikit-image/learn and MATE samples), Adam {lr} with cosine decay over the
  last 30%. **{steps} steps in {minutes} minutes** of CPU on 2 cores, no GPU.
- **Final losses (last step):** content {content:.4g}, style {style:.4g}, TV {tvl:.4g}.
- **Sample:** `fast-{name}.sample.jpg` (the bundled parrots photo). Curves: `fast-{name}.curves.png`.
- **Status:** {note}
- **Licence:** MIT (huafeng's own weights); the loss network is EfficientNet-Lite0 (Apache-2.0).
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--note", default="experimental.")
    args = ap.parse_args()
    run = Path(args.run)
    log = json.loads((run / "log.json").read_text())
    s, last = log["settings"], log["log"][-1]
    name = s["name"]
    tensors, meta = weights.load_file(run / f"{name}.safetensors")
    dest = weights.WEIGHTS_DIR / f"fast-{name}.safetensors"
    weights.save_file(tensors, dest, {**meta, "license": "MIT", "note": args.note})
    shutil.copyfile(run / "curves.png", weights.WEIGHTS_DIR / f"fast-{name}.curves.png")
    from huafeng.methods.fast import FastStylizer, load_net

    load_net.cache_clear()
    out = FastStylizer().stylize(load_image(sample_photo("parrots")), [name])
    save_image(out, weights.WEIGHTS_DIR / f"fast-{name}.sample.jpg", quality=88)
    card = CARD.format(name=name, painting=Path(s["painting"]).name, channels=s["channels"], blocks=s["res_blocks"],
                       params=sum(t.numel() for t in tensors.values()), cw=s["content_weight"], sw=s["style_weight"],
                       tv=s["tv_weight"], batch=s["batch"], crop=s["crop"], lr=s["lr"], steps=meta["steps"],
                       minutes=meta["minutes"], content=last["content"], style=last["style"], tvl=last["tv"],
                       note=args.note)
    (weights.WEIGHTS_DIR / f"fast-{name}.md").write_text(card)
    print(card)


if __name__ == "__main__":
    main()
