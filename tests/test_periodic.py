"""The periodic-artifact score finds a pattern added to every picture, and not the pictures' own texture."""
from __future__ import annotations

import pytest
import torch

from huafeng.errors import SettingsError
from huafeng.metrics import periodic_score


def _pictures(n: int = 8) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    # smooth random pictures with some fine noise: texture that differs from picture to picture
    out = []
    for _ in range(n):
        low = torch.nn.functional.interpolate(torch.rand(1, 3, 16, 16, generator=g), size=(300, 300), mode="bicubic")
        out.append((low + 0.05 * torch.rand(1, 3, 300, 300, generator=g)).clamp(0, 1))
    return out


def test_a_grid_added_to_every_picture_scores_high_at_its_period():
    clean = _pictures()
    grid = [p.clone() for p in clean]
    for p in grid:
        p[..., ::4, :] *= 0.9
        p[..., :, ::4] *= 0.9
    db_clean, _, _ = periodic_score(clean)
    db_grid, period, angle = periodic_score(grid)
    assert db_grid > db_clean + 8, (db_clean, db_grid)
    assert period == pytest.approx(4.0, abs=0.1) and abs(angle) % 90 == pytest.approx(0, abs=1)


def test_a_two_pixel_checkerboard_is_found_on_the_diagonal():
    pics = _pictures()
    yy, xx = torch.meshgrid(torch.arange(300), torch.arange(300), indexing="ij")
    board = (((yy // 2 + xx // 2) % 2) * 2 - 1).float() * 0.03  # 2x2-px cells: period 2.83 px at 45 deg
    db, period, angle = periodic_score([(p + board).clamp(0, 1) for p in pics])
    assert db > 15 and period == pytest.approx(2 * 2 ** 0.5, abs=0.05) and abs(angle) % 90 == pytest.approx(45, abs=1)


def test_small_pictures_and_no_pictures_are_one_line_errors():
    with pytest.raises(SettingsError):
        periodic_score([torch.rand(1, 3, 100, 400)])
    with pytest.raises(SettingsError):
        periodic_score([])
