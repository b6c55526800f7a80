"""Contact sheet of the optimisation method: photos x 4 styles x both backbones, default settings.

    python benchmarks/optimize_sheet.py -o docs/optimize_sheet.jpg
"""
from __future__ import annotations

import argparse
import sys
import time

import huafeng
from huafeng.image import load_image
from huafeng.sheet import contact_sheet
from huafeng.styles import BUNDLED, sample_photo

STYLES = ["starry-night", "great-wave", "the-scream", "udnie"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-o", "--output", default="docs/optimize_sheet.jpg")
    ap.add_argument("--backbones", default="lite0,vgg16")
    ap.add_argument("--photos", default="parrots,cat")
    ap.add_argument("--size", type=int, default=512)
    args = ap.parse_args()
    styles = [load_image(BUNDLED[s].path) for s in STYLES]
    grid, labels = [[None] + styles], ["styles"]
    for backbone in args.backbones.split(","):
        stylizer = huafeng.get_stylizer("optimize", backbone=backbone, size=args.size)
        for photo in args.photos.split(","):
            content = load_image(sample_photo(photo))
            row = [content]
            for name, style in zip(STYLES, styles):
                t0 = time.perf_counter()
                row.append(stylizer.stylize(content, [style]))
                print(f"{backbone} {photo} {name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
            grid.append(row)
            labels.append(f"{backbone} / {photo}")
    sheet = contact_sheet(grid, row_labels=labels, col_labels=["photo"] + STYLES, cell=320,
                          title=f"huafeng optimize (Gatys), defaults, {args.size} px")
    sheet.save(args.output, quality=88)
    print(args.output)


if __name__ == "__main__":
    main()
