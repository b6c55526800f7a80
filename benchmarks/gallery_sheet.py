"""Contact sheet of the shipped per-style networks: 6 photos x every gallery style.

    python benchmarks/gallery_sheet.py -o docs/gallery_sheet.jpg [--size 384]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import huafeng
from huafeng.image import load_image
from huafeng.methods.fast import gallery
from huafeng.sheet import contact_sheet
from huafeng.styles import BUNDLED

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PHOTOS = ["content/kodak24/04.png", "content/kodak24/23.png", "content/photos/chelsea.png",
          "content/photos/astronaut.png", "content/kodak24/15.png", "content/photos/motorcycle_left.png"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", default="docs/gallery_sheet.jpg")
    ap.add_argument("--size", type=int, default=384)
    args = ap.parse_args()
    names = list(gallery())
    if not names:
        raise SystemExit("no per-style network is shipped yet (huafeng/weights/fast-*.safetensors)")
    st = huafeng.get_stylizer("fast", size=args.size)
    grid = [[None] + [load_image(BUNDLED[n].path, size=args.size) if n in BUNDLED else None for n in names]]
    for p in PHOTOS:
        c = load_image(SHARED / p, size=args.size)
        grid.append([c] + [st.stylize(c, [n]) for n in names])
    contact_sheet(grid, row_labels=["paintings"] + [Path(p).stem for p in PHOTOS], col_labels=["photo"] + names,
                  cell=200, title=f"huafeng fast per-style networks (gallery), {args.size} px").save(
        args.output, quality=88)
    print(args.output)


if __name__ == "__main__":
    main()
