"""The painting network's held-out check during training: photos and paintings it never trains on.

Every evaluation paints each held-out photo (256 px) with each held-out painting (analysed at 512 px)
and reports the training loss terms on them (``eval_content``, ``eval_ms``, ``eval_gram``, ``eval_grid``,
and ``eval_feat``, the feature term) and writes a samples sheet (photos × paintings), so the curves show generalisation, not memory.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..features import FeatureExtractor
from ..image import read_image, resize_long_side
from ..methods.paint_net import PaintNet, pad_to_lattice, palette_map, unpad
from ..sheet import contact_sheet

Tensor = torch.Tensor


class PaintEval:
    def __init__(self, photos: list[Path], paintings: list[Path], net: PaintNet, vgg: FeatureExtractor,
                 photo_size: int = 256, style_size: int = 512, device: torch.device = torch.device("cpu")) -> None:
        from .paint import vgg_stats

        self.net, self.vgg = net, vgg
        self.photos = [pad_to_lattice(resize_long_side(read_image(p)[0], photo_size).to(device)) for p in photos]
        self.names = [p.stem[:18] for p in paintings]
        self.paintings = []
        with torch.no_grad():
            for p in paintings:
                img = resize_long_side(read_image(p)[0], style_size).to(device)
                self.paintings.append((img, net.painting_stats(img), vgg_stats(vgg, img)))

    @torch.no_grad()
    def __call__(self, sheet: Path, step: int) -> dict[str, float]:
        from .paint import feature_loss, paint_losses

        self.net.decoder.eval()
        sums: dict[str, float] = {}
        grid: list[list[Tensor | None]] = [[None] + [img.cpu() for img, _, _ in self.paintings]]
        for i, (x, pads) in enumerate(self.photos):
            row: list[Tensor | None] = [unpad(x, pads).cpu()]
            for _, st, target in self.paintings:
                xr = self.net.recolour(x, st)
                t = self.net.stylized_features(x, st, recoloured=xr)
                y = palette_map(self.net.decoder(t), st)
                terms = {**paint_losses(self.vgg, y, xr, target), "feat": feature_loss(self.net, y, t)}
                for k, v in terms.items():
                    sums[k] = sums.get(k, 0.0) + v.item()
                row.append(unpad(y, pads).cpu())
            if i < 4:
                grid.append(row)
        n = len(self.photos) * len(self.paintings)
        contact_sheet(grid, col_labels=["photo"] + self.names, cell=192,
                      title=f"held-out photos x held-out paintings, step {step}").save(sheet, quality=88)
        return {f"eval_{k}": round(v / n, 5) for k, v in sums.items()}
