"""Stylizing in the browser: headless Debian Chromium runs an exported network with onnxruntime-web,
in the studio (/browser) and in a standalone build (`huafeng export NAME --web DIR`); the canvas must
match Python onnxruntime's output, and no request may leave the page's origin."""
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from huafeng.image import load_image, save_image
from huafeng.styles import sample_photo

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
VENDOR = Path(__file__).resolve().parents[1] / "huafeng" / "service" / "static" / "vendor"
pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed"),
    pytest.mark.skipif(not (VENDOR / "ort.wasm.min.js").is_file(),
                       reason="onnxruntime-web is not vendored (run tools/vendor_ort_web.sh)"),
]
pytest.importorskip("onnxruntime")

from nets import random_fast_net  # noqa: E402

NAME = "test-net"


@pytest.fixture()
def net(tmp_path, monkeypatch, one_thread):
    """A seeded random network, installed in the gallery under NAME for the duration of the test."""
    from huafeng.methods import fast, gan

    path = random_fast_net(tmp_path / f"{NAME}.safetensors", seed=1)
    monkeypatch.setattr(fast, "gallery", lambda: {NAME: path})
    monkeypatch.setattr(gan, "gallery", lambda: {})  # only this network is listed, whatever ships
    monkeypatch.setenv("HUAFENG_CACHE", str(tmp_path / "cache"))
    return path  # one_thread: a tiny network and photo are faster on one thread on a shared machine


@pytest.fixture()
def photo(tmp_path):
    p = tmp_path / "photo.png"  # PNG: the browser decodes the same bytes to the same pixels
    save_image(load_image(sample_photo("parrots"), size=96), p)
    return p


def _stylize_in_browser(url: str, photo: Path, origin: str) -> tuple[np.ndarray, np.ndarray]:
    """Open the page, stylize the photo with the first network listed; returns (before, after) RGB
    uint8 arrays read back from the canvases. Fails on page errors and on requests off the origin."""
    from playwright.sync_api import expect, sync_playwright

    requests, errors = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page()
        page.on("request", lambda r: requests.append(r.url))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_function("window.huafeng !== undefined")
        page.evaluate("window.huafeng.ready")
        assert page.locator("#model option").count() >= 1
        page.select_option("#size", "256")
        page.set_input_files("#photo", str(photo))
        expect(page.locator("#go")).to_be_enabled(timeout=30_000)
        page.click("#go")
        expect(page.locator("#status")).to_contain_text("done", timeout=120_000)
        read = """id => { const c = document.getElementById(id);
                          return [c.width, c.height, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)]; }"""
        pixels = []
        for cid in ("before", "after"):
            w, h, data = page.evaluate(read, cid)
            pixels.append(np.array(data, dtype=np.uint8).reshape(h, w, 4)[..., :3])
        browser.close()
    assert not errors, errors
    off = [u for u in requests if not (u.startswith(origin + "/") or u.startswith(("blob:", "data:")))]
    assert not off, f"requests left the origin: {off}"
    assert not [u for u in requests if u.startswith(origin + "/v1/") and "stylize" in u]  # no upload
    return pixels[0], pixels[1]


def _python_onnxruntime(onnx_path: Path, before: np.ndarray) -> np.ndarray:
    from huafeng.export import OnnxNet

    x = torch.from_numpy(before.astype(np.float32) / 255).permute(2, 0, 1)[None]
    y = OnnxNet(onnx_path)(x)[0].permute(1, 2, 0).numpy()
    return np.round(np.clip(y, 0, 1) * 255).astype(np.uint8)


def _check(before, after, expected, photo):
    assert before.shape == after.shape == expected.shape == (64, 96, 3)
    assert np.abs(before.astype(int) - (load_image(photo).numpy()[0].transpose(1, 2, 0) * 255).round()).max() <= 1
    diff = np.abs(after.astype(int) - expected.astype(int))
    assert diff.max() <= 2, f"browser vs Python onnxruntime: max {diff.max()}/255, mean {diff.mean():.3f}"
    assert np.abs(after.astype(int) - before.astype(int)).mean() > 5  # stylized: not the photo again


def test_studio_browser_page_matches_python_onnxruntime(net, photo, tmp_path, serve):
    from huafeng.export import cached_export
    from huafeng.service import ServiceConfig, create_app

    origin = serve(create_app(ServiceConfig(results_dir=str(tmp_path / "results"))))
    before, after = _stylize_in_browser(origin + "/browser", photo, origin)
    _check(before, after, _python_onnxruntime(cached_export(NAME), before), photo)


def test_standalone_web_build_matches_python_onnxruntime(net, photo, tmp_path, serve):
    from fastapi import FastAPI
    from fastapi.staticfiles import StaticFiles

    from huafeng.cli import main

    out = tmp_path / "web"
    assert main(["export", NAME, "--web", str(out), "-q"]) == 0
    assert {"index.html", "browser.js", "model.onnx", "models.json"} <= {p.name for p in out.iterdir()}
    assert "/static/" not in (out / "index.html").read_text()
    app = FastAPI()
    app.mount("/", StaticFiles(directory=out, html=True))
    origin = serve(app)
    before, after = _stylize_in_browser(origin + "/", photo, origin)
    _check(before, after, _python_onnxruntime(out / "model.onnx", before), photo)
