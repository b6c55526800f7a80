"""Ship a trained per-style network into the gallery: weights, model card, curves, sample, eval sheet.

    python tools/ship_fast.py train_runs/style-starry-night [--note "..."] [--dest DIR]

Reads the run folder written by ``huafeng train style`` (``NAME.safetensors``, ``log.json``,
``curves.png``, ``eval.json``, ``eval.png``) and writes into ``huafeng/weights/``:
``fast-NAME.safetensors`` (float16: half the size, same pictures; loaded back as float32),
``fast-NAME.md`` (the model card), ``fast-NAME.curves.png``, ``fast-NAME.sample.jpg`` and
``fast-NAME.eval.jpg``. Every file stays well under 1 MB. ``--dest DIR`` writes them elsewhere
instead (a dry run: the gallery and its SHA256SUMS are left alone).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from huafeng import weights  # noqa: E402
from huafeng.image import load_image, resize_long_side, save_image  # noqa: E402
from huafeng.styles import BUNDLED, sample_photo  # noqa: E402

CARD = """# fast-{name}: per-style network for {painting_title}

![sample](fast-{name}.sample.jpg)

- **Painting:** {painting_title} (`{painting}`), public domain; provenance in huafeng/assets/SOURCES.md
  and the shared data's SOURCES.md.
- **Licence:** MIT (huafeng's own weights). The loss network is EfficientNet-Lite0 (Apache-2.0).
- **Network:** space-to-depth input, {blocks} residual blocks at 1/4 resolution ({c1} channels; {c0} at 1/2),
  bilinear upsample + conv with a skip, sub-pixel head predicting a change of logit (an untrained network
  returns the photo), instance norm; {params:,} parameters, stored as float16. Then a palette transfer onto
  the painting's colour mean and covariance (stored in float32 with the network; applied in inference,
  not trained through).
- **Data:** {n_train} photos from the shared content folder (Kodak 24, COCO 2017 subsets with per-image Flickr
  licences as customary, scikit-image/learn and MATE samples), random {crop} px crops (scale 0.5-1, flips),
  batches of {batch}; {n_held} photos held out for the evaluation.
- **Training:** `huafeng train style` with a Lite0 perceptual loss: content weight {cw}, style weight {sw}
  calibrated per painting (photos' own style loss {calib:.3f}, so {sw_eff:.0f} effective), TV {tv};
  Adam {lr} with cosine decay over the last 30%. **{steps} steps in {minutes} minutes** of CPU
  ({s_per_step} s/step, {crops_per_s} crops/s, {threads} thread(s) on a shared 2-core machine, next to a
  second training job), no GPU.
- **Final losses** (mean of the last 50 steps): content {content:.4g}, style {style:.4g}, TV {tvl:.4g}.
  Curves: `fast-{name}.curves.png`.
- **Evaluation** on {n_eval} held-out photos at {eval_size} px, against the optimization method (Gatys, Lite0,
  defaults) on the same photos ({eval_sheet}):

  | | style distance (VGG16 Gram, an independent judge; lower: more style) | content SSIM (higher: more photo) |
  |---|---|---|
  | fast (this network) | {fs:.4f} | {fss:.3f} |
  | optimize | {os_:.4f} | {oss:.3f} |
  | ratio fast / optimize | x{sr:.2f} (bar: ≤ x{bar_s}) | x{ssr:.2f} (bar: ≥ x{bar_c}) |

  Quality bar **{verdict}**.
- **Status:** {note}
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="a run folder of `huafeng train style`")
    ap.add_argument("--note", default="trained with the default settings; looked at on the eval sheet.")
    ap.add_argument("--dest", type=Path, default=weights.WEIGHTS_DIR, help="folder (default: the shipped gallery)")
    args = ap.parse_args()
    run = Path(args.run)
    log = json.loads((run / "log.json").read_text())
    s, rows, name = log["settings"], log["log"], log["name"]
    ev = json.loads((run / "eval.json").read_text()) if (run / "eval.json").exists() else None
    tensors, meta = weights.load_file(run / f"{name}.safetensors")
    args.dest.mkdir(parents=True, exist_ok=True)
    dest = args.dest / f"fast-{name}"
    evmeta = {"eval_style_ratio": ev["style_ratio"], "eval_ssim_ratio": ev["ssim_ratio"],
              "eval_passes": ev["passes"]} if ev else {}
    weights.save_file({k: v if k.startswith("palette.") else v.half() for k, v in tensors.items()}, f"{dest}.safetensors",
                      {**meta, "license": "MIT", "note": args.note, **evmeta})
    shutil.copyfile(run / "curves.png", f"{dest}.curves.png")
    from huafeng.methods.fast import FastStylizer, load_net

    load_net.cache_clear()
    out = FastStylizer().stylize(resize_long_side(load_image(sample_photo("parrots")), 512), [f"{dest}.safetensors"])
    save_image(out, f"{dest}.sample.jpg", quality=88)
    if (run / "eval.png").exists():
        sheet = load_image(run / "eval.png")
        save_image(resize_long_side(sheet, min(1280, max(sheet.shape[-2:]))), f"{dest}.eval.jpg", quality=85)
    tail = rows[-50:]
    mean = {k: sum(r[k] for r in tail) / len(tail) for k in ("content", "style", "tv")}
    bundled = BUNDLED.get(name)
    title = f"{bundled.title}, {bundled.artist}, {bundled.year}" if bundled else Path(s["painting"]).stem
    m = ev["mean"] if ev else {}
    card = CARD.format(
        name=name, painting_title=title, painting=Path(s["painting"]).name, blocks=s["res_blocks"],
        c0=s["channels"][0], c1=s["channels"][1], params=sum(t.numel() for t in tensors.values()),
        n_train=log["train_photos"], crop=s["crop"], batch=s["batch"], n_held=len(log["held_out"]),
        cw=s["content_weight"], sw=s["style_weight"], calib=log["calibration"], sw_eff=log["style_weight_effective"],
        tv=s["tv_weight"], lr=s["lr"], steps=log["steps"], minutes=log["minutes"], s_per_step=log["s_per_step"],
        crops_per_s=log["crops_per_s"], threads=log.get("threads", "?"), content=mean["content"], style=mean["style"], tvl=mean["tv"],
        n_eval=ev["photos"] if ev else 0, eval_size=s["eval_size"],
        eval_sheet=f"`fast-{name}.eval.jpg`: photo / fast / optimize" if ev else "no held-out photos",
        fs=m.get("fast_style", float("nan")), fss=m.get("fast_ssim", float("nan")),
        os_=m.get("optimize_style", float("nan")), oss=m.get("optimize_ssim", float("nan")),
        sr=ev["style_ratio"] if ev else float("nan"), ssr=ev["ssim_ratio"] if ev else float("nan"),
        bar_s=ev["bar"]["style_ratio_max"] if ev else "-", bar_c=ev["bar"]["ssim_ratio_min"] if ev else "-",
        verdict=("met" if ev["passes"] else "not met") if ev else "not measured", note=args.note)
    Path(f"{dest}.md").write_text(card)
    for suffix in (".safetensors", ".md", ".curves.png", ".sample.jpg", ".eval.jpg"):
        p = Path(f"{dest}{suffix}")
        if p.exists():
            print(f"{p}  {p.stat().st_size / 1024:.0f} KB")
    print(card)


if __name__ == "__main__":
    main()
