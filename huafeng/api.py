"""The one-call Python API: ``huafeng.stylize(content, style, method=..., **settings) -> PIL.Image``."""
from __future__ import annotations

import os
from typing import Any, Iterable, Mapping, Sequence, Union

import torch
from PIL import Image

from . import controls as ctl
from .errors import SettingsError
from .image import read_image, to_pil
from .methods import choose_method, get_stylizer, make_settings
from .styles import parse_style_spec, resolve_style

ImageLike = Union[str, os.PathLike, Image.Image, torch.Tensor]
StyleSpec = Union[ImageLike, Sequence[Union[ImageLike, tuple[ImageLike, float]]], Mapping[str, float]]


def _style_items(style: StyleSpec) -> list[tuple[ImageLike, float]]:
    """``(ref, weight)`` pairs from any accepted form; a string's ``:weight`` suffix is applied."""
    if isinstance(style, Mapping):
        items: Iterable = list(style.items())
    elif isinstance(style, (str, os.PathLike, Image.Image, torch.Tensor)):
        items = [style]
    else:
        items = list(style)
    out = []
    for item in items:
        ref, w = item if isinstance(item, tuple) else (item, 1.0)
        if isinstance(ref, str):
            ref, w2 = parse_style_spec(ref)
            w = w * w2
        out.append((ref, float(w)))
    if not out:
        raise SettingsError("at least one style is needed.")
    return out


def load_styles(style: StyleSpec, max_pixels: int | None = None) -> tuple[list[torch.Tensor], list[float]]:
    """Style images and their blend weights from any accepted form.

    Accepted: a bundled name or a path (optionally ``"path:weight"``), a PIL image, a tensor,
    a list of these or of ``(ref, weight)`` pairs, or a ``{ref: weight}`` mapping.
    """
    items = _style_items(style)
    images = [read_image(resolve_style(ref) if isinstance(ref, (str, os.PathLike)) else ref,
                         max_pixels=max_pixels)[0] for ref, _ in items]
    return images, ctl.normalize_weights([w for _, w in items])


def style_refs(style: StyleSpec) -> tuple[list[str], list[float]]:
    """Names or files of trained networks, with blend weights (``"name:0.7"``, lists, mappings)."""
    items = _style_items(style)
    if any(isinstance(ref, (Image.Image, torch.Tensor)) for ref, _ in items):
        raise SettingsError("this method takes a trained style network by name, not an image.")
    return [str(ref) for ref, _ in items], ctl.normalize_weights([w for _, w in items])


def stylize(content: ImageLike, style: StyleSpec, method: str = "auto", **kwargs: Any) -> Image.Image:
    """Stylize ``content`` with ``style`` and return a PIL image (alpha re-attached if the content had it).

    Keyword arguments are those of :func:`stylize_image`: the shared controls (``strength``,
    ``preserve_color``, ``mask``), ``progress``, ``device``, and the method's settings
    (e.g. ``size=1024, backbone="vgg16", steps=200``). ``method="auto"`` picks ``fast`` when every
    style named has a trained network in the gallery, otherwise ``photoreal`` (one pass: the photo in the
    colours and tone of the style picture, its detail kept); ``"optimize"`` is the slower option for a
    painting look.
    """
    out, alpha = stylize_image(content, style, method, **kwargs)
    return to_pil(out, alpha)


def stylize_image(content: ImageLike, style: StyleSpec, method: str = "auto", *,
                  strength: float = 1.0, preserve_color: str | bool = "none",
                  mask: ImageLike | None = None, progress: ctl.ProgressFn | None = None,
                  max_pixels: int | None = None, device: str = "cpu",
                  **settings: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Like :func:`stylize`, but returns ``(rgb, alpha)`` tensors, (1,3,H,W) and (1,1,h,w) or None."""
    if preserve_color is True:
        preserve_color = "luminance"
    elif preserve_color is False or preserve_color is None:
        preserve_color = "none"
    dev = _device(device)
    items = _style_items(style) if method in ("auto", None) else []
    method = choose_method(method, [r for r, _ in items])  # the auto choice and the check, in one place
    stylizer = get_stylizer(method, make_settings(method, **settings))
    rgb, alpha = read_image(content, max_pixels=max_pixels)
    styles: list[torch.Tensor] | list[str]  # pictures, or trained networks' names or files
    if getattr(stylizer, "takes_style_images", True):
        styles, weights = load_styles(style, max_pixels)
        styles = [s.to(dev) for s in styles]
    elif style is None or (isinstance(style, (list, tuple)) and not style):
        styles, weights = [], []  # the model is named in the settings (gan --model)
    else:  # the style is a trained network, referred to by name or file
        styles, weights = style_refs(style)
    m = read_image(mask, max_pixels=max_pixels)[0].mean(1, keepdim=True).to(dev) if mask is not None else None
    controls = ctl.Controls(strength=strength, preserve_color=preserve_color, mask=m)
    out = stylizer.stylize(rgb.to(dev), styles, weights, controls, progress)
    return out.cpu(), alpha


def _device(name: str) -> torch.device:
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise SettingsError(f"unknown device {name!r}; use cpu, cuda or cuda:N.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SettingsError(f"device {name!r} asked for, but no CUDA GPU is available; use --device cpu.")
    return dev
