"""The shared controls: colour transfer, strength, masks and weights, on hand-made pictures."""
import pytest
import torch

from huafeng import controls as ctl
from huafeng.errors import SettingsError


def test_yuv_round_trip():
    x = torch.rand(2, 3, 5, 7)
    assert torch.allclose(ctl.yuv_to_rgb(ctl.rgb_to_yuv(x)), x, atol=1e-5)
    grey = torch.full((1, 3, 2, 2), 0.4)
    yuv = ctl.rgb_to_yuv(grey)
    assert torch.allclose(yuv[:, 0], torch.full((1, 2, 2), 0.4)) and yuv[:, 1:].abs().max() < 1e-5


def test_preserve_luminance_keeps_the_content_colour():
    torch.manual_seed(0)
    content = torch.rand(1, 3, 16, 16) * 0.5 + 0.25
    stylized = torch.rand(1, 3, 16, 16)
    out = ctl.preserve_luminance(stylized, content)
    # chroma (U, V) comes from the content; luminance keeps the stylized pattern
    assert torch.allclose(ctl.rgb_to_yuv(out)[:, 1:], ctl.rgb_to_yuv(content)[:, 1:], atol=0.03)
    corr = torch.corrcoef(torch.stack([ctl.rgb_to_yuv(out)[0, 0].flatten(), ctl.rgb_to_yuv(stylized)[0, 0].flatten()]))
    assert corr[0, 1] > 0.95


def test_match_color_matches_mean_and_covariance():
    torch.manual_seed(0)
    src = torch.rand(1, 3, 32, 32) * 0.3
    ref = torch.rand(1, 3, 32, 32) * 0.2 + torch.tensor([0.6, 0.3, 0.1]).view(1, 3, 1, 1)
    out = ctl.match_color(src, ref)
    assert torch.allclose(out.mean((2, 3)), ref.mean((2, 3)), atol=1e-3)
    cov = lambda x: torch.cov(x.reshape(3, -1))  # noqa: E731
    assert torch.allclose(cov(out), cov(ref), atol=1e-3)


def test_strength_blends_in_image_space():
    a, b = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    assert torch.equal(ctl.blend_strength(a, b, 0.0), a)
    assert torch.allclose(ctl.blend_strength(a, b, 0.25), torch.full_like(a, 0.25))
    assert torch.equal(ctl.blend_strength(a, b, 1.0), b)


def test_apply_after_with_a_one_style_mask_keeps_the_black_region():
    content, stylized = torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 4:] = 1
    out = ctl.apply_after(content, stylized, ctl.Controls(mask=mask))
    assert torch.equal(out[..., :3], content[..., :3]) and torch.equal(out[..., 5:], stylized[..., 5:])


def test_region_masks_for_two_styles_are_complementary():
    m = torch.rand(1, 1, 6, 6)
    a, b = ctl.region_masks(m, 2, (6, 6))
    assert torch.allclose(a + b, torch.ones_like(a))
    with pytest.raises(SettingsError, match="one or two styles"):
        ctl.region_masks(m, 3, (6, 6))


def test_settings_are_checked():
    with pytest.raises(SettingsError):
        ctl.Controls(strength=1.5)
    with pytest.raises(SettingsError):
        ctl.Controls(preserve_color="sepia")
    assert ctl.normalize_weights([3, 1]) == [0.75, 0.25]
    with pytest.raises(SettingsError):
        ctl.normalize_weights([0, 0])
    with pytest.raises(SettingsError):
        ctl.normalize_weights([1, -1])
