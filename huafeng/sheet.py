"""Contact sheets: a labelled grid of pictures, for docs, training reports and evaluation."""
from __future__ import annotations

from typing import Sequence

import torch
from PIL import Image, ImageDraw, ImageFont

from .image import to_pil


def contact_sheet(grid: Sequence[Sequence[torch.Tensor | Image.Image | None]], *,
                  row_labels: Sequence[str] = (), col_labels: Sequence[str] = (),
                  cell: int = 256, pad: int = 4, title: str = "") -> Image.Image:
    """Lay out ``grid[row][col]`` pictures, each fitted into a ``cell``-pixel square, with labels.

    ``None`` leaves a cell empty. Labels are drawn above the columns and left of the rows.
    """
    font = ImageFont.load_default()
    rows, cols = len(grid), max(len(r) for r in grid)
    left = max([int(font.getlength(s)) + 2 * pad for s in row_labels] or [0])
    top = (14 + pad if col_labels else 0) + (16 + pad if title else 0)
    sheet = Image.new("RGB", (left + cols * (cell + pad) + pad, top + rows * (cell + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((pad, pad), title, fill="black", font=font)
    y0 = top - (14 if col_labels else 0)
    for c, label in enumerate(col_labels):
        draw.text((left + pad + c * (cell + pad), y0), label, fill="black", font=font)
    for r, row in enumerate(grid):
        y = top + pad + r * (cell + pad)
        if r < len(row_labels):
            draw.text((pad, y + cell // 2 - 6), row_labels[r], fill="black", font=font)
        for c, pic in enumerate(row):
            if pic is None:
                continue
            im = to_pil(pic) if isinstance(pic, torch.Tensor) else pic.convert("RGB")
            im = im.copy()
            im.thumbnail((cell, cell), Image.Resampling.LANCZOS)
            x = left + pad + c * (cell + pad)
            sheet.paste(im, (x + (cell - im.width) // 2, y + (cell - im.height) // 2))
    return sheet
