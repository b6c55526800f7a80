"""Ship a trained CycleGAN generator (A → B) into the weights folder, with a model card and a sample sheet.

    python tools/ship_gan.py runs/gan-monet monet [--experimental] [--note "..."] [--photos DIR]

Writes ``huafeng/weights/gan-NAME.safetensors`` (float16 by default: half the size, the same
pictures to the eye; loaded back as float32), ``gan-NAME.md`` (the model card),
``gan-NAME.curves.png`` and ``gan-NAME.sample.png`` (8 photos → B → back to A, kept under 500 KB),
and copies the sheet to ``docs/gan_sheet.png``. The generator then works as
``huafeng stylize PHOTO --method gan --model NAME``.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch  # noqa: E402

from huafeng import weights  # noqa: E402
from huafeng.image import load_image  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MAX_SHEET_BYTES = 500_000

CARD = """# gan-{name}.safetensors: CycleGAN generator, photo → {domain}{flag}

- **What it does:** translates a photo into the domain of its training paintings (no reference painting
  at run time): `huafeng stylize PHOTO --method gan --model {name}`. Works at any size (tiled above
  1024 px); it was trained on crops of pictures held at {train_side} px, so its brush marks are sized
  for results of roughly 300–600 px on the long side (use `--size 512` on big photos for the trained look).
- **Network:** CycleGAN ResNet generator (Zhu et al. 2017), slimmed for CPUs: channels {channels},
  {blocks} residual blocks, reflection padding, instance norm, nearest-upsample + conv; {params:,}
  parameters, stored as {dtype}.
- **Data:** domain A: {n_a} photos from the shared content folder (Kodak 24, COCO 2017 subsets with
  per-image Flickr licences as customary, scikit-image/learn and MATE samples). Domain B: {b_files}
  (public domain).
- **Training:** `huafeng train gan` (CycleGAN: LSGAN loss, cycle λ={lam}, identity {idt}·λ, 50-image history
  pool, Adam {lr} β1 0.5, constant then linear decay to 0 over the second half), batch {batch} of random
  {crop} px crops. **{steps} steps in {minutes} minutes** of CPU (2 cores shared), no GPU.
- **Final losses (mean of the last {k} steps):** G (adversarial, both directions) {G:.3f}, D {D:.3f},
  cycle {cycle:.3f}, identity {identity:.3f} (L1 on pixels in [-1, 1]).
- **Samples:** `gan-{name}.sample.png` (rows: photo, A→B, A→B→A). Curves: `gan-{name}.curves.png`.
- **Status:** {note}
- **Licence:** MIT (huafeng's own weights; trained from scratch, no pretrained network).
"""


def sample_sheet(g_ab, g_ba, photos: list[Path], path: Path) -> None:
    """8 photos, three rows (photo, A→B, A→B→A), saved as PNG shrunk until it is under 500 KB."""
    from huafeng.sheet import contact_sheet

    pics = [load_image(p, size=320) for p in photos]
    with torch.no_grad():
        fakes = [g_ab(x) for x in pics]
        backs = [g_ba(y) for y in fakes]
    for cell in (200, 170, 140, 120, 100):
        sheet = contact_sheet([pics, fakes, backs], row_labels=["photo", "A->B", "A->B->A"],
                              col_labels=[p.stem[:24] for p in photos], cell=cell)
        sheet.save(path, optimize=True)
        if path.stat().st_size < MAX_SHEET_BYTES:
            return
    sheet.quantize(256).save(path, optimize=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="the run folder of `huafeng train gan`")
    ap.add_argument("name", help="the model's name: huafeng/weights/gan-NAME.safetensors")
    ap.add_argument("--experimental", action="store_true", help="mark the model experimental in its card and metadata")
    ap.add_argument("--note", default="", help="a status line for the model card (what it does well or badly)")
    ap.add_argument("--domain", default="", help="the domain in words, e.g. 'Monet' (default: from the B files)")
    ap.add_argument("--fp32", action="store_true", help="keep float32 (twice the size)")
    ap.add_argument("--photos", help="folder of photos for the sample sheet (default: domain A's first folder)")
    ap.add_argument("--dest", help="write into this folder instead of the shipped weights (a dry run; docs/ untouched)")
    args = ap.parse_args()
    wdir = Path(args.dest) if args.dest else weights.WEIGHTS_DIR
    wdir.mkdir(parents=True, exist_ok=True)
    run = Path(args.run)
    log = json.loads((run / "log.json").read_text())
    s, rows, data = log["settings"], log["log"], log.get("data", {})
    tensors, meta = weights.load_file(run / "a2b.safetensors")
    dtype = torch.float32 if args.fp32 else torch.float16
    status = ("**Experimental.** " if args.experimental else "") + (args.note or "see the sample sheet.")
    dest = wdir / f"gan-{args.name}.safetensors"
    weights.save_file({k: v.to(dtype) for k, v in tensors.items()}, dest,
                      {**meta, "license": "MIT", "experimental": str(args.experimental).lower(), "note": status})
    shutil.copyfile(run / "curves.png", wdir / f"gan-{args.name}.curves.png")

    from huafeng.methods.gan import load_generator
    from huafeng.train.common import list_images

    g_ab, _ = load_generator(str(dest))
    g_ba, _ = load_generator(str(run / "b2a.safetensors"))
    folder = args.photos or s["a"][0]
    files = list_images(folder)
    photos = [files[round(i * (len(files) - 1) / 7)] for i in range(min(8, len(files)))]
    sheet = wdir / f"gan-{args.name}.sample.png"
    sample_sheet(g_ab, g_ba, photos, sheet)
    if not args.dest:
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(sheet, ROOT / "docs" / "gan_sheet.png")

    k = min(100, len(rows))
    mean = {key: sum(r[key] for r in rows[-k:]) / k for key in ("G", "D", "cycle", "identity")}
    b_files = data.get("b") or s["b"]
    domain = args.domain or ", ".join(sorted({Path(f).stem.split("_")[0].capitalize() for f in b_files}))
    card = CARD.format(name=args.name, domain=domain, flag=" (experimental)" if args.experimental else "",
                       train_side=s["a_side"], channels=tuple(s["channels"]), blocks=s["res_blocks"],
                       params=sum(t.numel() for t in tensors.values()), dtype="float16" if dtype == torch.float16
                       else "float32", n_a=data.get("n_a", "the"), b_files=", ".join(b_files), lam=s["lambda_cycle"],
                       idt=s["lambda_identity"], lr=s["lr"], batch=s["batch"], crop=s["crop"], steps=meta["steps"],
                       minutes=meta["minutes"], k=k, note=status, **mean)
    (wdir / f"gan-{args.name}.md").write_text(card)
    print(card)
    print(f"{dest} ({dest.stat().st_size:,} bytes); sheet {sheet} ({sheet.stat().st_size:,} bytes)"
          + ("" if args.dest else ", copied to docs/gan_sheet.png"))


if __name__ == "__main__":
    main()
