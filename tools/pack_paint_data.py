"""Pack the painting network's training data small enough to travel to a GPU machine (≤ 64 MiB).

    python tools/pack_paint_data.py [--out gpu_data]

Photos at 512 px and paintings at 640 px (the largest analysis size), JPEG quality 90, same file names
(so the held-out split is the same), into gpu_data/content, gpu_data/styles, gpu_data/styles_more.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
EXT = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"}

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "gpu_data"))
    a = ap.parse_args()
    total = 0
    for sub, side in (("content", 512), ("styles", 640), ("styles_more", 640)):
        for f in sorted((DATA / sub).rglob("*")):
            if f.suffix.lower() not in EXT or f.name.startswith("."):
                continue
            rel = f.relative_to(DATA / sub).with_suffix(f.suffix if f.suffix.lower() == ".png" and sub != "content"
                                                        else ".jpg")
            dst = Path(a.out) / sub / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            im = Image.open(f).convert("RGB")
            im.thumbnail((side, side), Image.LANCZOS)
            if dst.suffix == ".png":
                im.save(dst, optimize=True)
            else:
                im.save(dst, quality=90)
            total += dst.stat().st_size
    print(f"{a.out}: {total / 2**20:.1f} MiB")
