"""Strength ramp: a strength-conditioned per-style network (strength rendered inside the network)
against the gallery network blended with the photo (the default for every method).

    python benchmarks/strength_sheet.py CONDITIONED.safetensors --style starry-night -o docs/strength_sheet.jpg
"""
from __future__ import annotations

import argparse

import huafeng
from huafeng.controls import Controls
from huafeng.image import load_image, resize_long_side
from huafeng.sheet import contact_sheet
from huafeng.styles import sample_photo

STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("conditioned", help="a network trained with `huafeng train style --strength-conditioned`")
    ap.add_argument("--style", default="starry-night", help="the gallery network to compare with")
    ap.add_argument("--photo", default="parrots")
    ap.add_argument("-o", "--output", default="docs/strength_sheet.jpg")
    ap.add_argument("--size", type=int, default=320)
    a = ap.parse_args()
    x = resize_long_side(load_image(sample_photo(a.photo)), a.size)
    st = huafeng.get_stylizer("fast")
    rows = [[st.stylize(x, [ref], controls=Controls(strength=s)) for s in STRENGTHS]
            for ref in (a.conditioned, a.style)]
    sheet = contact_sheet(rows, row_labels=["conditioned", "blended"], col_labels=[f"strength {s}" for s in STRENGTHS],
                          cell=a.size, title=f"{a.style}: strength rendered by a conditioned network (top) "
                                             "vs blended with the photo (bottom)")
    sheet.convert("RGB").save(a.output, quality=88)
    print(a.output)


if __name__ == "__main__":
    main()
