"""Video stylization with temporal consistency: frames in → stylizer → frames out, audio kept.

Each frame is stylized, then blended with the previous *output* warped into the current frame
along the optical flow of the *input* frames (OpenCV DIS), where a forward-backward check says the
flow can be trusted (Ruder et al. 2016 use the flow in an optimisation; this is the cheap, one-pass
form of the same idea):

    O_t = c_t · k · W(O_{t−1}) + (1 − c_t · k) · S(I_t)

with S the stylizer, W the backward warp, c_t ∈ [0,1] the flow confidence and k the
``consistency`` strength (0: frame by frame). The style is analysed once per clip, so the palette
does not pulse. Finished frames are kept as PNGs in ``OUT.parts/`` until the end, so a killed run
resumes where it stopped; the output is written atomically and never over the input.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from . import controls as ctl
from .atomic import atomic_path
from .errors import ImageError, OutputError, SettingsError
from .image import IMAGE_EXTENSIONS, read_image, save_image
from .metrics import warp, warping_error
from .provenance import Provenance

Tensor = torch.Tensor
VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")
COMMENT_TAG = "comment"  # the container tag that carries the provenance record


# one pass per frame: the methods a video can use (optimize is minutes per frame; gan has its own sizes)
VIDEO_METHODS = ("fast", "photoreal", "arbitrary")

@dataclass(frozen=True)
class VideoSettings:
    consistency: float = 0.7    # k above; 0 stylizes frame by frame
    flow_side: int = 480        # optical flow is computed at this long side (and scaled up)
    trust_px: float = 1.5       # forward-backward disagreement (px) at which the flow is no longer trusted
    fps: float = 24.0           # for a folder of frames
    crf: int = 18               # H.264 quality of the output (lower is better)

    def __post_init__(self) -> None:
        if not 0 <= self.consistency < 1:
            raise SettingsError(f"consistency must be in [0, 1), got {self.consistency}.")


# ------------------------------------------------------------------------------------- reading
def probe(src: str | os.PathLike) -> dict:
    """Frame count, fps, size and whether there is audio (a folder of frames, or a video file)."""
    src = Path(src)
    if src.is_dir():
        files = _frame_files(src)
        h, w = read_image(files[0])[0].shape[-2:]
        return {"frames": len(files), "fps": None, "width": w, "height": h, "audio": False}
    import av

    try:
        with av.open(str(src)) as c:
            if not c.streams.video:
                raise ImageError(f"{src.name} has no video stream.")
            v = c.streams.video[0]
            return {"frames": int(v.frames or _count_frames(c, v)), "fps": float(v.average_rate or 24),
                    "width": v.codec_context.width, "height": v.codec_context.height, "audio": bool(c.streams.audio)}
    except (av.error.FFmpegError, OSError) as e:
        raise ImageError(f"{src.name} is not a readable video ({type(e).__name__}).") from None


def _count_frames(c, v) -> int:
    """The frames of a stream whose header does not say: from its duration and frame rate where it has
    both, else counted (its packets demuxed, not decoded)."""
    if v.duration and v.time_base and v.average_rate:
        return int(float(v.duration * v.time_base * v.average_rate))
    return sum(1 for p in c.demux(v) if p.size)


def container_comment(src: str | os.PathLike) -> str | None:
    """The container's comment tag (where huafeng writes its provenance record), or None."""
    import av

    try:
        with av.open(str(src)) as c:
            tags = {str(k).lower(): v for k, v in (c.metadata or {}).items()}
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise ImageError(f"{Path(src).name} is not a readable video ({type(e).__name__}).") from None
    return tags.get(COMMENT_TAG)


def _frame_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))
    if not files:
        raise ImageError(f"{folder} holds no image frames.")
    return files


def read_frames(src: str | os.PathLike) -> Iterator[Tensor]:
    """Frames as (1,3,H,W) float tensors in [0,1]."""
    src = Path(src)
    if src.is_dir():
        for f in _frame_files(src):
            yield read_image(f)[0]
        return
    import av

    with av.open(str(src)) as c:
        for frame in c.decode(video=0):
            yield torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1)[None].float() / 255


# ---------------------------------------------------------------------------------------- flow
def _grey(x: Tensor, side: int) -> np.ndarray:
    h, w = x.shape[-2:]
    s = min(1.0, side / max(h, w))
    y = F.interpolate(x, scale_factor=s, mode="area") if s < 1 else x
    return (y[0].mean(0).clamp(0, 1).numpy() * 255).astype(np.uint8)


def flow_and_confidence(cur: Tensor, prev: Tensor, side: int = 480, trust_px: float = 1.5) -> tuple[Tensor, Tensor]:
    """Backward flow (1,2,H,W) in pixels from ``cur`` to ``prev`` (cur(x) ≈ prev(x + f(x))), and a
    confidence (1,1,H,W) in [0,1] from the forward-backward check (low at occlusions)."""
    import cv2

    h, w = cur.shape[-2:]
    a, b = _grey(cur, side), _grey(prev, side)
    # (OpenCV's stub names only DISOpticalFlow.create; the module-level alias exists at run time)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)  # type: ignore[attr-defined]
    fb = torch.from_numpy(dis.calc(a, b, None)).permute(2, 0, 1)[None]   # cur -> prev
    ff = torch.from_numpy(dis.calc(b, a, None)).permute(2, 0, 1)[None]   # prev -> cur
    err = (fb + warp(ff, fb)).norm(dim=1, keepdim=True)                  # ≈ 0 where both agree
    conf = (1 - err / trust_px).clamp(0, 1)
    scale = w / a.shape[1]
    if a.shape != (h, w):
        fb = F.interpolate(fb, size=(h, w), mode="bilinear", align_corners=False) * scale
        conf = F.interpolate(conf, size=(h, w), mode="bilinear", align_corners=False)
    return fb, conf


# ------------------------------------------------------------------------------------------ main
def stylize_video(src: str | os.PathLike, dst: str | os.PathLike, stylizer, styles: list, weights: list[float],
                  controls: ctl.Controls = ctl.Controls(), settings: VideoSettings = VideoSettings(),
                  progress: ctl.ProgressFn | None = None, report: bool = False,
                  provenance: Provenance | None = None) -> dict:
    """Stylize a video file or a folder of frames into ``dst`` (a video file, or a folder for PNG frames).

    ``provenance`` (from :func:`huafeng.provenance.describe`) goes into the container's ``comment``
    tag, or into every PNG frame's text chunks. Returns ``{"frames", "fps", "seconds", "warping_error" (if report), "output"}``.
    """
    import time

    src, dst = Path(src), Path(dst)
    if not src.exists():
        raise ImageError(f"{src.name} does not exist; check the path.")
    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise OutputError(f"refusing to write over the input {src.name}; choose another -o.")
    to_folder = dst.suffix == ""
    if not to_folder and dst.suffix.lower() not in VIDEO_EXTENSIONS:
        raise OutputError(f"unknown video extension {dst.suffix}; use {', '.join(VIDEO_EXTENSIONS)} or a folder.")
    if not dst.parent.is_dir():
        raise OutputError(f"the folder {dst.parent} does not exist; create it or choose another -o.")
    info = probe(src)
    parts = dst.with_name(dst.name + ".parts")
    state_file = parts / "state.json"
    key = {"src": str(src.resolve()), "settings": asdict(settings), "frames": info["frames"],
           "provenance": provenance.to_json() if provenance is not None else None}  # other work: start afresh
    if parts.exists() and (not state_file.exists() or json.loads(state_file.read_text()).get("key") != key):
        shutil.rmtree(parts)  # left by a different job: start afresh
    parts.mkdir(exist_ok=True)
    state_file.write_text(json.dumps({"key": key}))
    t0, errors, prev_in, prev_out, n = time.time(), [], None, None, 0
    for i, frame in enumerate(read_frames(src)):
        n = i + 1
        done = parts / f"{i:06d}.png"
        flow = None
        if done.exists():  # finished before an interruption: reuse it
            out = read_image(done)[0]
        else:
            out = stylizer.stylize(frame, styles, weights, controls)
            if out.shape[-2:] != frame.shape[-2:]:
                out = F.interpolate(out, size=frame.shape[-2:], mode="bilinear", align_corners=False).clamp(0, 1)
            if prev_in is not None and settings.consistency > 0:
                assert prev_out is not None  # set with prev_in
                flow, conf = flow_and_confidence(frame, prev_in, settings.flow_side, settings.trust_px)
                k = conf * settings.consistency
                out = (k * warp(prev_out, flow) + (1 - k) * out).clamp(0, 1)
            out = (out * 255).round() / 255  # exactly what the PNG holds: a resumed run continues identically
            save_image(out, done, png_level=1, provenance=provenance)  # (a folder output keeps these frames)
        if report and prev_in is not None:
            assert prev_out is not None  # set with prev_in
            if flow is None:
                flow, conf = flow_and_confidence(frame, prev_in, settings.flow_side, settings.trust_px)
            errors.append(warping_error(prev_out, out, flow, (conf > 0.5).float()))
        prev_in, prev_out = frame, out
        if progress:
            progress(ctl.Progress(f"frame {n}", n, max(info["frames"], n)))
    fps = info["fps"] or settings.fps
    _write(parts, n, dst, src if info["audio"] else None, fps, settings.crf, to_folder, provenance)
    shutil.rmtree(parts, ignore_errors=True)
    secs = time.time() - t0
    result = {"frames": n, "fps": round(n / secs, 2), "seconds": round(secs, 1), "output": str(dst)}
    if report:
        result["warping_error"] = round(float(np.mean(errors)), 6) if errors else 0.0
    return result


def _write(parts: Path, n: int, dst: Path, audio_src: Path | None, fps: float, crf: int, to_folder: bool,
           provenance: Provenance | None = None) -> None:
    """Encode the finished frames (and copy the audio) into ``dst`` atomically."""
    if to_folder:
        tmp = dst.with_name(f".{dst.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for i in range(n):
            shutil.copyfile(parts / f"{i:06d}.png", tmp / f"{i:06d}.png")
        if dst.exists():
            shutil.rmtree(dst)
        os.replace(tmp, dst)
        return
    import av

    with atomic_path(dst) as tmp, av.open(str(tmp), "w") as out:  # keeps the extension: av picks the format
        if provenance is not None:  # mp4/mov: the ©cmt atom; mkv/webm: a COMMENT tag; avi: ICMT
            out.metadata[COMMENT_TAG] = provenance.to_json()
        first = read_image(parts / "000000.png")[0]
        h, w = first.shape[-2:]
        v = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        v.width, v.height, v.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
        v.options = {"crf": str(crf), "preset": "veryfast"}
        a_in = a_out = inp = None
        if audio_src is not None:
            inp = av.open(str(audio_src))
            a_in = inp.streams.audio[0]
            a_out = out.add_stream_from_template(a_in)
        for i in range(n):
            rgb = (read_image(parts / f"{i:06d}.png")[0][0, :, : v.height, : v.width] * 255).round().byte()
            frame = av.VideoFrame.from_ndarray(rgb.permute(1, 2, 0).contiguous().numpy(), format="rgb24")
            for packet in v.encode(frame):
                out.mux(packet)
        for packet in v.encode():
            out.mux(packet)
        if inp is not None:
            assert a_out is not None  # opened with inp
            for packet in inp.demux(a_in):
                if packet.dts is None:
                    continue
                packet.stream = a_out
                out.mux(packet)
            inp.close()
