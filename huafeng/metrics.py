"""Quality metrics of stylised pictures and videos, as plain typed functions; and a timer.

Images are float32 tensors (B, 3, H, W) in [0,1], usually B = 1. Where two images are compared
pixel by pixel and their sizes differ, the second is resized to the first (bilinear, antialiased).
Every metric returns a Python float; none tracks gradients. Feature metrics use the layers of
``methods.optimize.LAYERS`` and one cached :class:`FeatureExtractor` per (backbone, layers).
"""
from __future__ import annotations

import functools
import itertools
import os
import sys
import threading
import time

import torch
import torch.nn.functional as F

from .errors import SettingsError
from .features import FeatureExtractor
from .losses import content_loss, gram_matrix, mean_std, style_loss
from .methods.optimize import LAYERS

Tensor = torch.Tensor
_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601


def _check(channels: tuple[int, ...] = (3,), /, **images: Tensor) -> None:
    for name, x in images.items():
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] not in channels:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{name} must be a (B, {'|'.join(map(str, channels))}, H, W) tensor, got {shape}.")


def _match(b: Tensor, a: Tensor) -> Tensor:
    """``b`` resized to ``a``'s height and width (bilinear, antialiased) if they differ."""
    if b.shape[-2:] != a.shape[-2:]:
        b = F.interpolate(b, size=a.shape[-2:], mode="bilinear", align_corners=False, antialias=True)
    return b


def _luma(x: Tensor) -> Tensor:
    """Y = 0.299 R + 0.587 G + 0.114 B, (B, 1, H, W); a one-channel image is returned as is."""
    if x.shape[1] == 1:
        return x
    return (x * x.new_tensor(_LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)


# --- structure -----------------------------------------------------------------------------------

@torch.no_grad()
def ssim(a: Tensor, b: Tensor, *, data_range: float = 1.0, win_size: int = 7, luminance: bool = True) -> float:
    r"""Mean structural similarity (Wang et al. 2004), as scikit-image's ``structural_similarity``.

    With local means μ, sample variances σ² and covariance σ_xy over a uniform w×w window,

    .. math:: \mathrm{SSIM}(x,y) = \frac{(2\mu_x\mu_y + C_1)(2\sigma_{xy} + C_2)}
              {(\mu_x^2 + \mu_y^2 + C_1)(\sigma_x^2 + \sigma_y^2 + C_2)},
              \quad C_1 = (0.01 L)^2,\ C_2 = (0.03 L)^2,

    (co)variances scaled by w²/(w²−1), averaged over the windows that lie wholly inside the image
    (skimage crops (w−1)/2 pixels per border; its border mode therefore never matters), then over
    channels and batch. ``luminance=True`` compares the luma Y = 0.299R + 0.587G + 0.114B;
    ``luminance=False`` averages over R, G, B (skimage's ``channel_axis``). One-channel input is
    compared as is.

    Small images (departure from skimage, which raises): the window shrinks to the largest odd
    size ≤ the short side, at least 3. Below 3 pixels there is one window, the whole image, with
    population (co)variances; for a 1-pixel image that leaves the luminance term
    (2xy + C1)/(x² + y² + C1): 1.0 if the pixels are equal, less otherwise.
    """
    _check((1, 3), a=a, b=b)
    if win_size < 3 or win_size % 2 == 0:
        raise SettingsError(f"win_size must be an odd number of at least 3, got {win_size}.")
    b = _match(b, a)
    if luminance:
        a, b = _luma(a), _luma(b)
    elif a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have as many channels, got {a.shape[1]} and {b.shape[1]}.")
    return _ssim(a.double(), b.double(), data_range, win_size)


def _ssim(x: Tensor, y: Tensor, data_range: float, win_size: int) -> float:
    side = min(x.shape[-2:])
    if side >= 3:
        win = min(win_size, side if side % 2 else side - 1)

        def mean(t: Tensor) -> Tensor:  # valid uniform filter == skimage's filter then crop
            return F.avg_pool2d(t, win, stride=1)
        cov_norm = win * win / (win * win - 1)
    else:
        def mean(t: Tensor) -> Tensor:  # one window: the whole image
            return t.mean((-2, -1), keepdim=True)
        cov_norm = 1.0
    ux, uy = mean(x), mean(y)
    vx = cov_norm * (mean(x * x) - ux * ux)
    vy = cov_norm * (mean(y * y) - uy * uy)
    vxy = cov_norm * (mean(x * y) - ux * uy)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = (2 * ux * uy + c1) * (2 * vxy + c2) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean().item()


def _sobel_magnitude(y: Tensor) -> Tensor:
    r"""|∇y| with Sobel kernels divided by 4 (a smoothed central difference, each in [−1, 1]);
    replicate padding keeps the size. (B, 1, H, W) -> (B, 1, H, W)."""
    k = y.new_tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 4
    kernels = torch.stack([k, k.t()]).unsqueeze(1)  # (2, 1, 3, 3): d/dx, d/dy
    g = F.conv2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), kernels)
    return g.pow(2).sum(1, keepdim=True).sqrt()


@torch.no_grad()
def edge_ssim(a: Tensor, b: Tensor) -> float:
    """SSIM (data range 1) of the Sobel gradient magnitudes of the two lumas: edge preservation."""
    _check(a=a, b=b)
    b = _match(b, a)
    ga, gb = _sobel_magnitude(_luma(a).double()), _sobel_magnitude(_luma(b).double())
    return _ssim(ga, gb, 1.0, 7)


# --- features ------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _extractor(backbone: str, layers: tuple[str, ...]) -> FeatureExtractor:
    return FeatureExtractor(backbone, layers)


def _features(x: Tensor, backbone: str, kind: str) -> list[Tensor]:
    """Activations of ``x`` at the backbone's ``kind`` ("style" or "content") layers, in order."""
    if backbone not in LAYERS:
        raise SettingsError(f"unknown backbone {backbone!r}; choose one of: {', '.join(LAYERS)}.")
    names = tuple(LAYERS[backbone][kind])
    feats = _extractor(backbone, names)(x)
    return [feats[n] for n in names]


@torch.no_grad()
def content_distance(a: Tensor, b: Tensor, backbone: str = "lite0") -> float:
    r"""Relative feature distance at the content layers: mean over l of ‖F_l(a) − F_l(b)‖² / ‖F_l(b)‖²."""
    _check(a=a, b=b)
    fa, fb = _features(a, backbone, "content"), _features(_match(b, a), backbone, "content")
    return sum(content_loss(x, y, normalize=True).item() for x, y in zip(fa, fb)) / len(fa)


@torch.no_grad()
def gram_distance(a: Tensor, style: Tensor, backbone: str = "lite0") -> float:
    r"""Style distance: mean over the style layers l of ‖G_l(a) − G_l(s)‖²_F / ‖G_l(s)‖²_F.

    Gram matrices (``losses.gram_matrix``) are C×C whatever the image size, so no resizing.
    """
    _check(a=a, style=style)
    fa, fs = _features(a, backbone, "style"), _features(style, backbone, "style")
    d = [style_loss(gram_matrix(x), gram_matrix(y), normalize=True).item() for x, y in zip(fa, fs)]
    return sum(d) / len(d)


@torch.no_grad()
def mean_std_distance(a: Tensor, style: Tensor, backbone: str = "lite0") -> float:
    r"""Style distance on instance statistics (``losses.mean_std``), mean over the style layers of

    .. math:: \frac{\lVert\mu_a-\mu_s\rVert^2 + \lVert\sigma_a-\sigma_s\rVert^2}{\lVert\mu_s\rVert^2 + \lVert\sigma_s\rVert^2}
    """
    _check(a=a, style=style)
    d = []
    for x, y in zip(_features(a, backbone, "style"), _features(style, backbone, "style")):
        (ma, sa), (ms, ss) = mean_std(x), mean_std(y)
        num = (ma - ms).pow(2).sum() + (sa - ss).pow(2).sum()
        d.append((num / (ms.pow(2).sum() + ss.pow(2).sum()).clamp_min(1e-12)).item())
    return sum(d) / len(d)


def _unit_features(x: Tensor, backbone: str) -> list[Tensor]:
    """Style-layer features scaled to unit length along channels (LPIPS' normalisation)."""
    return [f / (f.pow(2).sum(1, keepdim=True).sqrt() + 1e-10) for f in _features(x, backbone, "style")]


def _lpips(ua: list[Tensor], ub: list[Tensor]) -> float:
    return sum((x - y).pow(2).sum(1).mean().item() for x, y in zip(ua, ub)) / len(ua)


@torch.no_grad()
def perceptual_distance(a: Tensor, b: Tensor, backbone: str = "lite0") -> float:
    r"""LPIPS without learned weights (Zhang et al. 2018, the unweighted variant) at the style layers:

    .. math:: d(a,b) = \frac{1}{L}\sum_l \frac{1}{H_l W_l}\sum_{h,w}\lVert\hat F_l(a)_{hw} - \hat F_l(b)_{hw}\rVert_2^2,
              \qquad \hat F = F / \lVert F\rVert_{\text{channels}}

    ``b`` is resized to ``a`` first. Each term lies in [0, 4] (in [0, 2] for post-ReLU features).
    """
    _check(a=a, b=b)
    return _lpips(_unit_features(a, backbone), _unit_features(_match(b, a), backbone))


@torch.no_grad()
def diversity(images: list[Tensor], backbone: str = "lite0") -> float:
    """Mean ``perceptual_distance`` over all pairs (all resized to the first's size); 0.0 below 2."""
    if len(images) < 2:
        return 0.0
    _check(**{f"images[{i}]": x for i, x in enumerate(images)})
    feats = [_unit_features(_match(x, images[0]), backbone) for x in images]
    d = [_lpips(u, v) for u, v in itertools.combinations(feats, 2)]
    return sum(d) / len(d)


# --- colour --------------------------------------------------------------------------------------

def _rgb_histogram(x: Tensor, bins: int) -> Tensor:
    q = (x.clamp(0, 1) * bins).long().clamp_max(bins - 1)  # (B, 3, H, W) bin of each channel
    idx = (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]
    h = torch.bincount(idx.flatten(), minlength=bins ** 3).double()
    return h / h.sum()


@torch.no_grad()
def color_distance(a: Tensor, b: Tensor, bins: int = 8) -> float:
    r"""1 − histogram intersection (Swain & Ballard 1991) of the joint RGB histograms, in [0, 1]:

    .. math:: d = 1 - \sum_k \min(h_a[k], h_b[k]),\qquad \textstyle\sum_k h[k] = 1,

    over bins³ cubes of the RGB cube. 0 for the same colour distribution (whatever the layout
    or size), 1 for disjoint ones.
    """
    _check(a=a, b=b)
    if bins < 1:
        raise SettingsError(f"bins must be at least 1, got {bins}.")
    inter = torch.minimum(_rgb_histogram(a, bins), _rgb_histogram(b, bins)).sum().item()
    return min(max(1.0 - inter, 0.0), 1.0)


# --- time ----------------------------------------------------------------------------------------

def warp(img: Tensor, flow: Tensor) -> Tensor:
    """Backward warp: out(p) = img(p + flow(p)), bilinear, border padding. Differentiable.

    img (B, C, H, W); flow (B, 2, H, W) in pixels, flow[:, 0] = dx, flow[:, 1] = dy.
    """
    if img.dim() != 4 or flow.dim() != 4 or flow.shape[1] != 2 or flow.shape[-2:] != img.shape[-2:] \
            or flow.shape[0] not in (1, img.shape[0]):
        raise ValueError(f"flow must be (B, 2, H, W) matching img {tuple(img.shape)}, got {tuple(flow.shape)}.")
    b, _, h, w = img.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=img.dtype, device=img.device),
                            torch.arange(w, dtype=img.dtype, device=img.device), indexing="ij")
    flow = flow.to(img.dtype)
    # align_corners=True: pixel centre 0 -> -1, centre W-1 -> +1 (a 1-px side maps to -1 = its only pixel)
    gx = 2 * (xs + flow[:, 0]) / max(w - 1, 1) - 1
    gy = 2 * (ys + flow[:, 1]) / max(h - 1, 1) - 1
    grid = torch.stack((gx, gy), dim=-1).expand(b, h, w, 2)  # (B, H, W, 2)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=True)


@torch.no_grad()
def warping_error(prev_out: Tensor, cur_out: Tensor, flow: Tensor, mask: Tensor | None = None) -> float:
    r"""Temporal warping error (Lai et al. 2018):

    .. math:: E = \frac{\sum_p M(p)\,\lVert O_t(p) - \hat W(O_{t-1})(p)\rVert_2^2}{\sum_p M(p) + 10^{-8}}

    with Ŵ = ``warp`` by ``flow``, the backward flow from frame t to frame t−1, the norm over
    channels and the sums over pixels and batch. ``mask`` (B, 1, H, W), e.g. non-occluded pixels,
    defaults to all ones.
    """
    if cur_out.shape != prev_out.shape:
        raise ValueError(f"prev_out and cur_out must have one shape, got {tuple(prev_out.shape)} and {tuple(cur_out.shape)}.")
    sq = (cur_out - warp(prev_out, flow)).pow(2).sum(1, keepdim=True)  # (B, 1, H, W)
    m = torch.ones_like(sq) if mask is None else mask.to(sq.dtype).expand_as(sq)
    return ((m * sq).sum() / (m.sum() + 1e-8)).item()


# ------------------------------------------------------------------------- fixed-period patterns
def _log_spectrum(img: Tensor, n: int) -> Tensor:
    """dB power spectrum (n, n), DC centred, of the high-pass luminance of a centre n×n crop."""
    y = _luma(img)[0, 0].double()
    h, w = y.shape
    if min(h, w) < n:
        raise SettingsError(f"the periodic score needs pictures of at least {n}x{n} px, got {w}x{h}.")
    t, left = (h - n) // 2, (w - n) // 2
    g = y[t:t + n, left:left + n]
    blur = F.avg_pool2d(F.pad(g[None, None], (2, 2, 2, 2), mode="reflect"), 5, 1)[0, 0]  # 5×5 box
    win = torch.hann_window(n, periodic=False, dtype=torch.float64)
    p = torch.fft.fftshift(torch.fft.fft2((g - blur) * torch.outer(win, win))).abs().pow(2)
    return 10 * torch.log10(p + 1e-12)


def _median9(m: Tensor) -> Tensor:
    """9×9 running median (reflected borders) of a 2-D map."""
    x = F.pad(m[None, None], (4, 4, 4, 4), mode="reflect")
    return x.unfold(2, 9, 1).unfold(3, 9, 1).reshape(*m.shape, 81).median(-1).values


@torch.no_grad()
def periodic_score(images: list[Tensor], crop: int = 256) -> tuple[float, float, float]:
    r"""How strongly a stylizer adds one fixed-period pattern (grid, hatching, checkerboard) to every picture.

    For each picture: luminance, a centre crop of ``crop``² at its own pixel scale (never resized), minus a
    5×5 box blur, Hann-windowed, its power spectrum in dB; the spectra of all pictures are averaged, so
    texture that varies from picture to picture averages out and a pattern at the same frequency in every
    picture stays. The score is the largest excess over the local (9×9) median in the mid/high-frequency
    band (0.15 < radius < 0.98 of Nyquist):

    .. math:: S = \max_{f\in	ext{band}}ig(ar P(f) - \operatorname{med}_{9	imes9}ar P(f)ig)\ 	ext{dB}

    Returns ``(score_db, period_px, angle_deg)`` of that peak. Compare sets of equal size (8 or more):
    the score falls as more pictures are averaged. Seen here at 512 px: photos alone ~6 dB, a clean
    stylizer ~8 dB, a 4-px grid or a 2-px checkerboard 17–25 dB (the same idea as the project's shared ``tools/periodic.py``).
    """
    if not images:
        raise SettingsError("the periodic score needs at least one picture.")
    m = torch.stack([_log_spectrum(im, crop) for im in images]).mean(0)
    n = m.shape[0]
    yy, xx = torch.meshgrid(torch.arange(n) - n // 2, torch.arange(n) - n // 2, indexing="ij")
    rad = torch.hypot(yy.double(), xx.double()) / (n / 2)
    excess = torch.where((rad > 0.15) & (rad < 0.98), m - _median9(m), torch.tensor(float("-inf"), dtype=m.dtype))
    i = int(excess.argmax())
    y, x = divmod(i, n)
    fy, fx = (y - n // 2) / n, (x - n // 2) / n
    return float(excess[y, x]), 1 / max((fy * fy + fx * fx) ** 0.5, 1e-9), float(torch.atan2(torch.tensor(fy),
                                                                                        torch.tensor(fx)).rad2deg())


class Measure:
    """Context manager measuring wall time and peak resident memory of its block.

    ``seconds``: wall time. ``peak_rss_total_bytes``: the largest RSS seen; ``peak_rss_bytes``:
    that minus the RSS at entry. A daemon thread samples /proc/self/statm every ``interval``
    seconds (plus once at entry and exit), so a spike shorter than that can be missed.
    Without /proc (macOS, BSD) it falls back to ``resource.getrusage().ru_maxrss``, the process's
    lifetime peak: ``peak_rss_bytes`` is then how much the block raised that peak, which is 0 when
    an earlier part of the process had used more. Without ``resource`` (Windows) both stay 0.
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.seconds = 0.0
        self.peak_rss_bytes = 0
        self.peak_rss_total_bytes = 0
        self._proc = os.path.exists("/proc/self/statm")
        self._page = os.sysconf("SC_PAGE_SIZE") if self._proc else 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _rss(self) -> int:
        if self._proc:
            with open("/proc/self/statm", "rb") as f:
                return int(f.read().split()[1]) * self._page
        try:
            import resource
        except ImportError:
            return 0
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return kb if sys.platform == "darwin" else kb * 1024  # bytes on macOS, KiB elsewhere

    def _sample(self) -> None:
        self.peak_rss_total_bytes = max(self.peak_rss_total_bytes, self._rss())

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> "Measure":
        self._rss0 = self.peak_rss_total_bytes = self._rss()
        self._stop.clear()
        if self._proc:
            self._thread = threading.Thread(target=self._run, name="huafeng-measure", daemon=True)
            self._thread.start()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t0
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._sample()
        self.peak_rss_bytes = max(self.peak_rss_total_bytes - self._rss0, 0)
