"""Video: a tiny generated clip (a moving square, 16 frames, with audio) round-trips, and consistency
lowers the temporal warping error."""

import numpy as np
import pytest
import torch

av = pytest.importorskip("av")
pytest.importorskip("cv2")

from huafeng.methods.fast import FastStylizer, NetConfig, TransformerNet, net_metadata  # noqa: E402
from huafeng.video import VideoSettings, probe, stylize_video  # noqa: E402
from huafeng.weights import save_file  # noqa: E402


def make_clip(path, frames=16, fps=12, w=96, h=64):
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        a = c.add_stream("aac", rate=22050)
        yy, xx = np.mgrid[0:h, 0:w]
        for i in range(frames):
            img = np.zeros((h, w, 3), np.uint8)
            img[..., 0] = (xx * 255 // w).astype(np.uint8)       # a gradient background
            img[..., 2] = (yy * 255 // h).astype(np.uint8)
            x0 = 10 + 3 * i
            img[20:44, x0:x0 + 24] = (240, 220, 40)               # the moving square
            for p in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
        t, n = 0, int(22050 * frames / fps)
        while t < n:
            k = min(1024, n - t)
            tone = (0.3 * np.sin(2 * np.pi * 440 * (np.arange(t, t + k) / 22050))).astype(np.float32)[None]
            frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 22050, t
            for p in a.encode(frame):
                c.mux(p)
            t += k
        for p in a.encode():
            c.mux(p)


class _Stream:
    """What probe reads of a video stream, for headers a real encoder would not write."""

    def __init__(self, frames=0, duration=None, time_base=None, average_rate=None):
        self.frames, self.duration, self.time_base, self.average_rate = frames, duration, time_base, average_rate
        self.codec_context = type("Codec", (), {"width": 96, "height": 64})()


class _Container:
    def __init__(self, stream, packets):
        self.streams = type("Streams", (), {"video": [stream], "audio": []})()
        self.packets = packets

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def demux(self, stream):
        return iter([type("Packet", (), {"size": n})() for n in self.packets])


def test_probe_counts_the_frames_of_a_stream_that_does_not_say(tmp_path, monkeypatch):
    from fractions import Fraction

    packets = [900, 300, 300, 0]  # three frames, then the demuxer's empty flush packet
    for stream, frames, fps in (
            (_Stream(duration=1000), 3, 24.0),                                          # no rate, no time base: a TypeError before
            (_Stream(duration=1000, time_base=Fraction(1, 1000)), 3, 24.0),              # no rate
            (_Stream(duration=1000, average_rate=Fraction(12)), 3, 12.0),                # no time base
            (_Stream(), 3, 24.0),                                                        # nothing at all
            (_Stream(duration=2000, time_base=Fraction(1, 1000), average_rate=Fraction(12)), 24, 12.0),  # as before
            (_Stream(frames=7, average_rate=Fraction(12)), 7, 12.0)):                     # as before
        monkeypatch.setattr(av, "open", lambda _path, s=stream: _Container(s, packets))
        info = probe(tmp_path / "odd.mkv")
        assert (info["frames"], info["fps"], info["width"], info["height"]) == (frames, fps, 96, 64), info


@pytest.fixture(scope="module")
def net_file(tmp_path_factory):
    torch.manual_seed(0)
    p = tmp_path_factory.mktemp("n") / "net.safetensors"
    save_file(TransformerNet().state_dict(), p, net_metadata(NetConfig()))
    return str(p)


def test_clip_round_trips_with_frames_fps_and_audio(tmp_path, net_file):
    clip = tmp_path / "clip.mp4"
    make_clip(clip)
    before = clip.read_bytes()
    out = tmp_path / "out.mp4"
    seen = []
    r = stylize_video(clip, out, FastStylizer(), [net_file], [1.0], progress=seen.append)
    assert r["frames"] == 16 and seen[-1].step == 16
    info = probe(out)
    assert info["frames"] == 16 and abs(info["fps"] - 12) < 0.01 and info["audio"]
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "aac"
        assert sum(1 for _ in c.demux(c.streams.audio[0])) > 5
    assert clip.read_bytes() == before                     # the input is untouched
    assert not (tmp_path / "out.mp4.parts").exists()       # the work folder is cleaned up
    with pytest.raises(Exception):
        stylize_video(clip, clip, FastStylizer(), [net_file], [1.0])


def test_consistency_lowers_the_warping_error(tmp_path, net_file):
    clip = tmp_path / "clip.mp4"
    make_clip(clip)
    plain = stylize_video(clip, tmp_path / "a.mp4", FastStylizer(), [net_file], [1.0],
                          settings=VideoSettings(consistency=0.0), report=True)
    steady = stylize_video(clip, tmp_path / "b.mp4", FastStylizer(), [net_file], [1.0],
                           settings=VideoSettings(consistency=0.8), report=True)
    assert steady["warping_error"] < 0.8 * plain["warping_error"], (steady, plain)


def test_resume_after_interruption_reuses_finished_frames(tmp_path, net_file):
    clip = tmp_path / "clip.mp4"
    make_clip(clip, frames=8)
    out = tmp_path / "out.mp4"
    calls = []

    class Flaky(FastStylizer):
        def stylize(self, *a, **k):
            calls.append(1)
            if len(calls) == 5:
                raise KeyboardInterrupt  # killed while on frame 5
            return super().stylize(*a, **k)

    with pytest.raises(KeyboardInterrupt):
        stylize_video(clip, out, Flaky(), [net_file], [1.0])
    assert len(list((tmp_path / "out.mp4.parts").glob("*.png"))) == 4 and not out.exists()
    calls.clear()
    r = stylize_video(clip, out, Flaky(), [net_file], [1.0])
    assert r["frames"] == 8 and len(calls) == 4 and probe(out)["frames"] == 8


def test_folder_of_frames_in_and_out(tmp_path, net_file):
    from huafeng.image import save_image

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(5):
        save_image(torch.rand(1, 3, 32, 48), frames / f"f{i:03d}.png")
    r = stylize_video(frames, tmp_path / "styled", FastStylizer(), [net_file], [1.0])
    assert r["frames"] == 5 and len(list((tmp_path / "styled").glob("*.png"))) == 5


def test_resume_gives_the_same_frames_as_an_uninterrupted_run(tmp_path, net_file):
    from huafeng.image import read_image

    clip = tmp_path / "clip.mp4"
    make_clip(clip, frames=8)
    whole = tmp_path / "whole"
    stylize_video(clip, whole, FastStylizer(), [net_file], [1.0])
    calls = []

    class Killed(FastStylizer):
        def stylize(self, *a, **k):
            calls.append(1)
            if len(calls) == 4:
                raise KeyboardInterrupt
            return super().stylize(*a, **k)

    resumed = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        stylize_video(clip, resumed, Killed(), [net_file], [1.0])
    stylize_video(clip, resumed, FastStylizer(), [net_file], [1.0])
    a, b = sorted(whole.glob("*.png")), sorted(resumed.glob("*.png"))
    assert len(a) == len(b) == 8
    for fa, fb in zip(a, b):
        assert torch.equal(read_image(fa)[0], read_image(fb)[0]), fa.name


@pytest.mark.parametrize("content", [b"", b"not a video at all", b"\x00\x00\x00\x18ftypmp42" + bytes(200)])
def test_corrupt_or_non_video_input_is_one_line(tmp_path, capsys, content, net_file):
    from huafeng.cli import main

    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    assert main(["video", str(bad), "--style", net_file, "--method", "fast", "-o", str(tmp_path / "o.mp4"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.mp4" in err and "Traceback" not in err
    assert bad.read_bytes() == content and not (tmp_path / "o.mp4").exists()
