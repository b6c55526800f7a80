"""The studio page in real headless Chromium (Debian's, driven by Playwright): upload, pick, stylize, download."""
import os
import shutil
from pathlib import Path

import pytest

from huafeng.image import read_image, save_image
from huafeng.styles import BUNDLED, sample_photo

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")
DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture()
def server(tmp_path, serve):
    from huafeng.service import ServiceConfig, create_app

    return serve(create_app(ServiceConfig(results_dir=str(tmp_path / "results"),
                                          method_defaults={"optimize": {"steps": 30}})))


def _menu() -> list[str]:
    """The studio's method menu, as the library defines it: auto, every method, GAN models one by one."""
    from huafeng.methods import METHODS
    from huafeng.methods.gan import gallery as gan_gallery

    return ["auto"] + [o for m in METHODS for o in ([f"gan:{n}" for n in gan_gallery()] if m == "gan" else [m])]


def _launch(p):
    return p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"])


def test_a_gallery_style_with_the_default_method_runs_its_trained_network(server, tmp_path):
    """The studio leaves the choice to the library ("auto"), as the CLI does: a gallery style with a
    trained network runs that network. Checked by the job's reported method."""
    from playwright.sync_api import expect, sync_playwright

    from huafeng.methods.fast import gallery

    style = next((n for n in BUNDLED if n in gallery()), None)
    if style is None:
        pytest.skip("no bundled style has a trained network")
    photo = tmp_path / "photo.png"
    save_image(read_image(sample_photo("parrots"))[0], photo)
    with sync_playwright() as p:
        browser = _launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server + "/")
        expect(page.locator("#method option")).to_have_count(len(_menu()))
        assert page.eval_on_selector_all("#method option", "os => os.map(o => o.value)") == _menu()
        assert page.input_value("#method") == "auto"
        marked = page.eval_on_selector_all("#gallery button[data-network='true']", "bs => bs.map(b => b.dataset.style)")
        assert marked == [n for n in BUNDLED if n in gallery()]
        page.set_input_files("#photo", str(photo))
        page.click(f"#gallery button[data-style='{style}']")
        page.select_option("#size", "256")
        with page.expect_response(lambda r: r.url.endswith("/v1/jobs") and r.request.method == "POST") as resp:
            page.click("#go")
        job = resp.value.json()["id"]
        expect(page.locator("#status")).to_contain_text("done", timeout=120_000)
        assert page.request.get(f"{server}/v1/jobs/{job}").json()["method"] == "fast"
        browser.close()
    assert not errors, errors


def test_a_gan_model_from_the_method_list_runs_without_a_style(server, tmp_path):
    """Every shipped GAN model is its own entry in the method menu; picking one needs no style, and
    the job runs that model (the job's reported method)."""
    from playwright.sync_api import expect, sync_playwright

    from huafeng.methods.gan import gallery as gan_gallery

    if not gan_gallery():
        pytest.skip("no GAN model is shipped")
    photo = tmp_path / "photo.png"
    save_image(read_image(sample_photo("parrots"))[0], photo)
    with sync_playwright() as p:
        browser = _launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server + "/")
        expect(page.locator("#method option")).to_have_count(len(_menu()))
        gans = page.eval_on_selector_all("#method option[data-model]", "os => os.map(o => o.dataset.model)")
        assert gans == list(gan_gallery())
        page.set_input_files("#photo", str(photo))
        expect(page.locator("#go")).to_be_disabled()  # no style yet, and auto needs one
        page.select_option("#method", f"gan:{gans[0]}")
        page.select_option("#size", "256")
        expect(page.locator("#go")).to_be_enabled()
        with page.expect_response(lambda r: r.url.endswith("/v1/jobs") and r.request.method == "POST") as resp:
            page.click("#go")
        job = resp.value.json()["id"]
        expect(page.locator("#status")).to_contain_text("done", timeout=120_000)
        assert page.request.get(f"{server}/v1/jobs/{job}").json()["method"] == "gan"
        assert page.eval_on_selector("#after", "img => img.naturalWidth") == 256
        browser.close()
    assert not errors, errors


def test_studio_upload_pick_stylize_download(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    photo = tmp_path / "photo.png"
    save_image(read_image(sample_photo("parrots"))[0], photo)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server + "/")
        expect(page.locator("#gallery button")).to_have_count(len(BUNDLED))  # one per bundled style
        expect(page.locator("#method option")).to_have_count(len(_menu()))
        page.set_input_files("#photo", str(photo))
        page.click("#gallery button[data-style='starry-night']")
        page.select_option("#method", "optimize")
        page.select_option("#size", "256")
        page.click("#go")
        expect(page.locator("#compare")).to_be_visible(timeout=120_000)
        expect(page.locator("#status")).to_contain_text("done", timeout=120_000)
        # the result is shown (a decoded image, not a broken one) and downloadable
        width = page.eval_on_selector("#after", "img => img.naturalWidth")
        assert width == 256
        with page.expect_download() as dl:
            page.click("#download")
        saved = tmp_path / "download.png"
        dl.value.save_as(saved)
        rgb, _ = read_image(saved)
        assert max(rgb.shape[-2:]) == 256
        assert page.locator("#history img").count() == 1
        shot = Path(os.environ.get("HUAFENG_SCREENSHOT", tmp_path / "studio.png"))
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert not errors, errors
