"""Losses against hand-computed values, batch consistency and gradcheck (float64)."""
import math

import pytest
import torch

from huafeng.losses import adain, content_loss, gram_matrix, mean_std, mean_std_loss, style_loss, total_variation


def feat(values, c, h, w):
    return torch.tensor(values, dtype=torch.float64).reshape(1, c, h, w)


def test_gram_matrix_by_hand():
    f = feat([1, 2, 3, 4], 2, 1, 2)  # channels [1,2] and [3,4], N = 2 positions
    # F F^T = [[1+4, 3+8], [3+8, 9+16]] = [[5, 11], [11, 25]], divided by N = 2
    assert torch.allclose(gram_matrix(f)[0], torch.tensor([[2.5, 5.5], [5.5, 12.5]], dtype=torch.float64))


def test_masked_gram_uses_only_the_masked_positions():
    f = feat([1, 2, 3, 4], 2, 1, 2)
    m = torch.tensor([1.0, 0.0], dtype=torch.float64).reshape(1, 1, 1, 2)
    # only position 0: [[1*1, 1*3], [3*1, 3*3]] / 1
    assert torch.allclose(gram_matrix(f, m)[0], torch.tensor([[1.0, 3.0], [3.0, 9.0]], dtype=torch.float64))
    # a mask of all ones is the plain Gram matrix
    assert torch.allclose(gram_matrix(f, torch.ones(1, 1, 1, 2, dtype=torch.float64)), gram_matrix(f))


def test_content_loss_by_hand():
    f = feat([1, 2], 1, 1, 2)
    assert content_loss(f, torch.zeros_like(f)).item() == pytest.approx(2.5)  # (1 + 4) / 2
    p = torch.ones_like(f)
    assert content_loss(f, p, normalize=True).item() == pytest.approx(0.5)  # (0 + 1) / (1 + 1)


def test_style_loss_by_hand():
    g = torch.eye(2, dtype=torch.float64)[None]
    a = 2 * torch.eye(2, dtype=torch.float64)[None]
    assert style_loss(g, a).item() == pytest.approx(0.5)  # (1 + 1) / 4 entries
    assert style_loss(g, a, normalize=True).item() == pytest.approx(0.25)  # 2 / (4 + 4)
    assert style_loss(a, a).item() == 0.0


def test_total_variation_by_hand():
    img = feat([0, 1, 2, 3], 1, 2, 2)
    # vertical: (2-0)^2, (3-1)^2 -> mean 4; horizontal: (1-0)^2, (3-2)^2 -> mean 1
    assert total_variation(img).item() == pytest.approx(5.0)
    assert total_variation(torch.full((1, 3, 4, 4), 0.3)).item() == 0.0
    assert total_variation(feat([0, 1, 3], 1, 3, 1)).item() == pytest.approx(2.5)  # a 1-px wide strip: no NaN


def test_mean_std_and_adain_by_hand():
    x = feat([1, 3], 1, 1, 2)
    mu, sd = mean_std(x, eps=0.0)
    assert mu.item() == 2.0 and sd.item() == 1.0  # biased variance: ((1-2)^2 + (3-2)^2) / 2 = 1
    c, s = feat([0, 2], 1, 1, 2), feat([10, 14], 1, 1, 2)
    assert torch.allclose(adain(c, s, eps=0.0), feat([10, 14], 1, 1, 2))
    assert mean_std_loss(c, s, eps=0.0).item() == pytest.approx((1 - 12) ** 2 + (1 - 2) ** 2)


def test_batch_consistency():
    torch.manual_seed(0)
    a, b = torch.rand(1, 4, 5, 6), torch.rand(1, 4, 5, 6)
    both = torch.cat([a, b])
    assert torch.allclose(gram_matrix(both)[1], gram_matrix(b)[0])
    assert torch.allclose(adain(both, both.flip(0))[0], adain(a, b)[0], atol=1e-6)
    mu, sd = mean_std(both)
    assert torch.allclose(mu[1], mean_std(b)[0][0])


def test_gradcheck_float64():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    t = torch.rand(1, 3, 3, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: style_loss(gram_matrix(x), t, normalize=True), (x,))
    assert torch.autograd.gradcheck(total_variation, (x,))
    y = torch.rand(1, 3, 4, 5, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: adain(x, y), (x,))
    assert torch.autograd.gradcheck(lambda x: content_loss(x, y, normalize=True), (x,))


def test_gram_is_scale_free_in_positions():
    # a tiled copy of a map has the same Gram matrix: the normalisation is per position
    torch.manual_seed(0)
    f = torch.rand(1, 3, 4, 4)
    assert torch.allclose(gram_matrix(f), gram_matrix(f.repeat(1, 1, 2, 2)), atol=1e-6)
    assert not math.isnan(gram_matrix(f, torch.zeros(1, 1, 4, 4)).sum().item())  # an empty mask is safe
