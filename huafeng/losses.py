"""Losses and feature statistics of neural style transfer, as plain typed functions.

Notation: a feature map F has shape (B, C, H, W); N = H·W is the number of positions and
F_b ∈ R^{C×N} is one image's map flattened over space.
"""
from __future__ import annotations

import torch

Tensor = torch.Tensor


def gram_matrix(feat: Tensor, mask: Tensor | None = None) -> Tensor:
    r"""Gram matrix of feature correlations (Gatys et al. 2016), normalised by the positions.

    .. math:: G_b = \frac{1}{N} F_b F_b^\top \in \mathbb{R}^{C\times C}

    With a spatial ``mask`` M (B, 1, H, W) of weights in [0,1] (resized to the map if needed), it is
    the masked second moment :math:`G_b = F_b\,\mathrm{diag}(m_b)\,F_b^\top / \sum_i m_{b,i}`, so
    that a region's style statistics do not depend on the region's size.

    Returns (B, C, C).
    """
    b, c, h, w = feat.shape
    f = feat.reshape(b, c, h * w)
    if mask is None:
        return f @ f.transpose(1, 2) / (h * w)
    m = _fit_mask(mask, h, w).reshape(b, 1, h * w)
    return (f * m) @ f.transpose(1, 2) / m.sum(-1, keepdim=True).clamp_min(1e-8)


def _fit_mask(mask: Tensor, h: int, w: int) -> Tensor:
    if mask.shape[-2:] != (h, w):
        mask = torch.nn.functional.interpolate(mask, size=(h, w), mode="area")
    return mask


def content_loss(feat: Tensor, target: Tensor, normalize: bool = False) -> Tensor:
    r"""Content loss (Gatys et al. 2016): mean squared feature difference.

    .. math:: L_c = \frac{1}{BCN}\lVert F - P \rVert^2

    With ``normalize=True`` it is relative to the target's energy, so layers of different scale
    weigh alike: :math:`L_c = \lVert F - P\rVert^2 / \lVert P\rVert^2`.
    """
    diff = (feat - target).pow(2)
    if normalize:
        return diff.sum() / target.pow(2).sum().clamp_min(1e-8)
    return diff.mean()


def style_loss(gram: Tensor, target_gram: Tensor, normalize: bool = False) -> Tensor:
    r"""Style loss (Gatys et al. 2016): squared distance of Gram matrices.

    .. math:: L_s = \frac{1}{BC^2}\lVert G - A \rVert_F^2

    With ``normalize=True``: :math:`L_s = \lVert G - A\rVert_F^2 / \lVert A\rVert_F^2`, which makes
    one style weight work across layers and backbones.
    """
    diff = (gram - target_gram).pow(2)
    if normalize:
        return diff.sum() / target_gram.pow(2).sum().clamp_min(1e-8)
    return diff.mean()


def total_variation(img: Tensor) -> Tensor:
    r"""Squared total variation (Mahendran & Vedaldi 2015), a smoothness prior on the image.

    .. math:: L_{tv} = \frac{1}{B C}\sum_{b,c}\Big[\operatorname{mean}_{i,j}(x_{i+1,j}-x_{i,j})^2
              + \operatorname{mean}_{i,j}(x_{i,j+1}-x_{i,j})^2\Big]
    """
    h, w = img.shape[-2:]
    zero = img.new_zeros(())
    dy = (img[..., 1:, :] - img[..., :-1, :]).pow(2).mean() if h > 1 else zero  # a 1-px side has no variation
    dx = (img[..., :, 1:] - img[..., :, :-1]).pow(2).mean() if w > 1 else zero
    return dx + dy


def mean_std(feat: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    r"""Per-channel mean and standard deviation over space (instance statistics).

    .. math:: \mu_{bc} = \frac{1}{N}\sum_i F_{bci}, \qquad
              \sigma_{bc} = \sqrt{\frac{1}{N}\sum_i (F_{bci}-\mu_{bc})^2 + \epsilon}

    Returns two tensors of shape (B, C, 1, 1). The variance is the biased (1/N) one.
    """
    mu = feat.mean((2, 3), keepdim=True)
    var = feat.var((2, 3), keepdim=True, unbiased=False)
    return mu, (var + eps).sqrt()


def adain(content_feat: Tensor, style_feat: Tensor, eps: float = 1e-5) -> Tensor:
    r"""Adaptive instance normalisation (Huang & Belongie 2017).

    .. math:: \mathrm{AdaIN}(x, y) = \sigma(y)\,\frac{x - \mu(x)}{\sigma(x)} + \mu(y)
    """
    mc, sc = mean_std(content_feat, eps)
    ms, ss = mean_std(style_feat, eps)
    return (content_feat - mc) / sc * ss + ms


def mean_std_loss(feat: Tensor, target: Tensor, eps: float = 1e-5) -> Tensor:
    r"""Style loss on instance statistics (Huang & Belongie 2017):

    .. math:: L = \lVert\mu(F)-\mu(S)\rVert_2^2/C + \lVert\sigma(F)-\sigma(S)\rVert_2^2/C
    """
    m1, s1 = mean_std(feat, eps)
    m2, s2 = mean_std(target, eps)
    return (m1 - m2).pow(2).mean() + (s1 - s2).pow(2).mean()


# ------------------------------------------------------------------------------ adversarial (GAN)
def lsgan_loss(scores: Tensor, real: bool) -> Tensor:
    r"""Least-squares GAN loss (Mao et al. 2017), as CycleGAN uses it, on a discriminator's scores.

    .. math:: L = \operatorname{mean}_i\,(D(x)_i - t)^2, \qquad t = 1 \text{ (real) or } 0 \text{ (fake)}

    The discriminator minimises :math:`\tfrac12[L(D(y), 1) + L(D(G(x)), 0)]`; the generator
    minimises :math:`L(D(G(x)), 1)`. With a PatchGAN the mean runs over every patch score.
    """
    return (scores - (1.0 if real else 0.0)).pow(2).mean()


def cycle_loss(reconstructed: Tensor, original: Tensor) -> Tensor:
    r"""Cycle-consistency loss (Zhu et al. 2017): an image sent to the other domain and back returns.

    .. math:: L_{cyc} = \operatorname{mean}\,\lvert F(G(x)) - x \rvert \;(+\; \operatorname{mean}\,\lvert G(F(y)) - y\rvert)

    (an L1 mean over pixels; call it once per direction and add).
    """
    return (reconstructed - original).abs().mean()


def identity_loss(mapped: Tensor, original: Tensor) -> Tensor:
    r"""Identity-mapping loss (Taigman et al. 2017, used by Zhu et al. 2017 for paintings ↔ photos):
    a generator fed an image already in its target domain should leave it alone, which keeps colours.

    .. math:: L_{idt} = \operatorname{mean}\,\lvert G(y) - y \rvert \;(+\; \operatorname{mean}\,\lvert F(x) - x\rvert)
    """
    return (mapped - original).abs().mean()
