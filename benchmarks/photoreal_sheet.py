"""Contact sheet of the photoreal method: 6 photos x 6 paintings as look sources, half of them held out of training.

    python benchmarks/photoreal_sheet.py -o docs/photoreal_sheet.jpg [--weights FILE]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import huafeng
from huafeng.image import load_image
from huafeng.sheet import contact_sheet
from huafeng.train.photoreal import HELD_OUT_STYLES

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PHOTOS = ["content/kodak24/04.png", "content/kodak24/23.png", "content/photos/chelsea.png",
          "content/photos/astronaut.png", "content/kodak24/15.png", "content/photos/motorcycle_left.png"]
SEEN = ["vangogh_starry_night.jpg", "hokusai_great_wave.jpg", "leger_contrast_of_forms.jpg"]
UNSEEN = [s for s in HELD_OUT_STYLES if s in ("picabia_udnie.jpg", "munch_the_scream.jpg",
                                                "kandinsky_composition_vii.jpg")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-o", "--output", default="docs/photoreal_sheet.jpg")
    ap.add_argument("--weights", default="photoreal")
    ap.add_argument("--size", type=int, default=512)
    args = ap.parse_args()
    st = huafeng.get_stylizer("photoreal", weights=args.weights, size=args.size)
    names = SEEN + UNSEEN
    styles = [load_image(SHARED / "styles" / n, size=512) for n in names]
    grid = [[None] + styles]
    for p in PHOTOS:
        c = load_image(SHARED / p, size=args.size)
        grid.append([c] + [st.stylize(c, [s]) for s in styles])
    labels = [n.split(".")[0] + (" (held out)" if n in UNSEEN else "") for n in names]
    contact_sheet(grid, row_labels=["paintings"] + [Path(p).stem for p in PHOTOS], col_labels=["photo"] + labels,
                  cell=240, title=f"huafeng photoreal (multi-level WCT), {args.size} px").save(args.output, quality=88)
    print(args.output)


if __name__ == "__main__":
    main()
