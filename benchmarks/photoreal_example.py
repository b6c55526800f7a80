"""The README's photoreal example: a strip of three panels, photo | look source | result, one label each.

    huafeng stylize ../shared/data/content/kodak24/21.png --style ../shared/data/content/photos/rocket.jpg \\
        --method photoreal -o /tmp/lighthouse_dusk.png
    python benchmarks/photoreal_example.py ../shared/data/content/kodak24/21.png \\
        ../shared/data/content/photos/rocket.jpg /tmp/lighthouse_dusk.png -o docs/photoreal_example.jpg
"""
from __future__ import annotations

import argparse

from PIL import Image, ImageDraw, ImageFont


def strip(panels: list[Image.Image], labels: list[str], width: int = 1200, pad: int = 6) -> Image.Image:
    """The panels side by side at one height, ``width`` pixels wide in all, a label above each."""
    try:
        font = ImageFont.load_default(size=16)
    except TypeError:  # Pillow < 10.1: the small bitmap font
        font = ImageFont.load_default()
    ratios = [p.width / p.height for p in panels]
    h = round((width - pad * (len(panels) + 1)) / sum(ratios))
    top = 26
    sheet = Image.new("RGB", (width, top + h + pad), "white")
    draw = ImageDraw.Draw(sheet)
    x = pad
    for p, r, label in zip(panels, ratios, labels):
        w = round(h * r)
        sheet.paste(p.convert("RGB").resize((w, h), Image.LANCZOS), (x, top))
        draw.text((x, 5), label, fill="black", font=font)
        x += w + pad
    return sheet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photo")
    ap.add_argument("look")
    ap.add_argument("result")
    ap.add_argument("-o", "--output", default="docs/photoreal_example.jpg")
    ap.add_argument("--width", type=int, default=1200)
    args = ap.parse_args()
    panels = [Image.open(f) for f in (args.photo, args.look, args.result)]
    strip(panels, ["photo", "look source (--style)", "photoreal result"], args.width).save(
        args.output, quality=88)
    print(args.output)


if __name__ == "__main__":
    main()
