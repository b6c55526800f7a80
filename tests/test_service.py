"""The REST API through FastAPI's TestClient: happy paths, limits, cancellation, bad input."""
import re
import time

import pytest
import torch
from fastapi.testclient import TestClient

from huafeng.image import save_image
from huafeng.service import ServiceConfig, create_app

from corpus import make_corpus
from service_kit import make_client, png_bytes, wait


@pytest.fixture()
def client(tmp_path, decoders):
    return make_client(tmp_path, decoders)


def test_health_styles_thumbnail_and_studio(client):
    from huafeng.methods import DEFAULT_METHOD, METHODS

    h = client.get("/v1/health").json()
    assert h["status"] == "ok" and h["methods"] == list(METHODS) and DEFAULT_METHOD in h["methods"]
    styles = client.get("/v1/styles").json()
    assert len(styles) >= 8 and styles[0]["thumbnail"].startswith("/v1/styles/")
    t = client.get(styles[0]["thumbnail"])
    assert t.status_code == 200 and t.headers["content-type"] == "image/jpeg"
    page = client.get("/")
    assert page.status_code == 200 and "huafeng studio" in page.text and "cdn" not in page.text.lower()
    # the studio's method menu offers installed methods only (no stale names); the rest comes from the server
    select = re.search(r'<select id="method">(.*?)</select>', page.text, re.S).group(1)
    offered = re.findall(r'<option value="([^"]*)"', select)
    assert offered and set(offered) <= set(METHODS) | {"auto"}, offered
    assert client.get("/static/studio.js").status_code == 200
    assert "/v1/jobs" in client.get("/openapi.json").json()["paths"]


def test_methods_list_every_method_and_styles_mark_their_trained_networks(client):
    from huafeng.methods import METHODS
    from huafeng.methods.fast import gallery
    from huafeng.methods.gan import gallery as gan_gallery

    listed = client.get("/v1/methods").json()
    assert listed[0]["method"] == "auto"
    assert {m["method"] for m in listed[1:]} == set(METHODS) - ({"gan"} if not gan_gallery() else set())
    assert [m["model"] for m in listed if m["method"] == "gan"] == list(gan_gallery())
    styles = client.get("/v1/styles").json()
    assert {s["name"] for s in styles if s["network"]} == {s["name"] for s in styles} & set(gallery())


def test_auto_gives_a_gallery_style_its_trained_network(client):
    from huafeng.methods import DEFAULT_METHOD
    from huafeng.methods.fast import gallery
    from huafeng.styles import BUNDLED

    trained = [n for n in BUNDLED if n in gallery()]
    untrained = [n for n in BUNDLED if n not in gallery()]
    if not trained or not untrained:
        pytest.skip("needs bundled styles with and without a trained network")
    for style, method in ((trained[0], "fast"), (untrained[0], DEFAULT_METHOD)):
        r = client.post("/v1/jobs", files={"content": ("p.png", png_bytes())}, data={"style": style, "size": "32"})
        assert r.status_code == 202 and r.json()["method"] == method, r.json()
    r = client.post("/v1/jobs", files={"content": ("p.png", png_bytes())},
                    data={"style": untrained[0], "method": "fast"})
    assert r.status_code == 422 and "trained network" in r.json()["error"]


def test_sync_stylize_returns_a_png(client):
    r = client.post("/v1/stylize", files={"content": ("p.png", png_bytes())}, data={"style": "udnie", "size": "48"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content[:8] == b"\x89PNG\r\n\x1a\n"
    r = client.post("/v1/stylize", files={"content": ("p.png", png_bytes()), "style_file": ("s.png", png_bytes(seed=1))})
    assert r.status_code == 200
    r = client.post("/v1/stylize", files={"content": ("p.png", png_bytes())}, data={"style": "udnie", "method": "optimize"})
    assert r.status_code == 422 and "/v1/jobs" in r.json()["error"]


def test_job_lifecycle_and_result(client):
    r = client.post("/v1/jobs", files={"content": ("p.png", png_bytes())},
                    data={"style": "starry-night", "method": "optimize", "size": "32", "strength": "0.8",
                          "preserve_color": "luminance"})
    assert r.status_code == 202
    job = wait(client, r.json()["id"])
    assert job["status"] == "done" and job["progress"] == 1.0
    img = client.get(job["result"])
    assert img.status_code == 200 and img.content[:4] == b"\x89PNG"


def test_cancel_a_running_job(tmp_path, decoders):
    client = make_client(tmp_path, decoders, optimize_steps=400)
    r = client.post("/v1/jobs", files={"content": ("p.png", png_bytes())},
                    data={"style": "udnie", "method": "optimize", "size": "96"})
    job_id = r.json()["id"]
    for _ in range(200):
        if client.get(f"/v1/jobs/{job_id}").json()["status"] == "running":
            break
        time.sleep(0.02)
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 200
    assert wait(client, job_id)["status"] == "cancelled"
    assert client.get(f"/v1/jobs/{job_id}/result").status_code == 409


def test_cancel_of_a_record_pruned_meanwhile_is_404(client):
    from huafeng.service.jobs import Job

    jobs = client.app.state.jobs
    job_id = "ab" * 16
    jobs.get = lambda _id: Job(id=job_id, params={}, status="done")  # there when the route looks it up ...
    jobs.cancel = lambda _id: None                                   # ... and pruned before it is cancelled
    r = client.delete(f"/v1/jobs/{job_id}")
    assert r.status_code == 404 and r.json() == {"error": f"no job {job_id!r}."}  # was an AssertionError (500)


def test_sync_stylize_answers_500_for_a_bug_and_422_for_a_users_error(client, monkeypatch):
    from huafeng.errors import ImageError
    from huafeng.service import runner

    def bug(*_a, **_kw):
        raise ZeroDivisionError("a detail for the log, not the client")

    monkeypatch.setattr(runner, "stylize_image", bug)
    send = dict(files={"content": ("p.png", png_bytes())}, data={"style": "udnie", "size": "32"})
    r = client.post("/v1/stylize", **send)
    assert r.status_code == 500 and r.json() == {"error": "internal error: ZeroDivisionError"}  # was 422

    def users_error(*_a, **_kw):
        raise ImageError("p.png is not a readable image.")

    monkeypatch.setattr(runner, "stylize_image", users_error)
    r = client.post("/v1/stylize", **send)
    assert r.status_code == 422 and r.json() == {"error": "p.png is not a readable image."}
    documented = client.get("/openapi.json").json()["paths"]["/v1/stylize"]["post"]["responses"]
    assert "internal error" in documented["500"]["description"]


def test_full_queue_gets_429_with_retry_after(tmp_path, decoders):
    client = make_client(tmp_path, decoders, optimize_steps=400, max_queue=1)
    send = lambda: client.post("/v1/jobs", files={"content": ("p.png", png_bytes())},  # noqa: E731
                               data={"style": "udnie", "method": "optimize", "size": "96"})
    first = send().json()["id"]
    for _ in range(200):  # wait until the worker has taken the first job, so the queue is empty again
        if client.get(f"/v1/jobs/{first}").json()["status"] == "running":
            break
        time.sleep(0.02)
    second = send()
    third = send()
    assert second.status_code == 202 and third.status_code == 429
    assert third.headers["retry-after"] and "queue is full" in third.json()["error"]
    for j in (first, second.json()["id"]):
        client.delete(f"/v1/jobs/{j}")


def test_oversize_uploads_get_413(tmp_path, decoders):
    client = make_client(tmp_path, decoders, max_upload_bytes=5000, max_pixels=1000)
    big = png_bytes(100, 100)
    r = client.post("/v1/jobs", files={"content": ("p.png", big)}, data={"style": "udnie"})
    assert r.status_code == 413 and "error" in r.json()
    small_but_many_pixels = png_bytes(40, 40)  # 1600 px > 1000, under the byte limit
    assert len(small_but_many_pixels) < 5000
    r = client.post("/v1/jobs", files={"content": ("p.png", small_but_many_pixels)}, data={"style": "udnie"})
    assert r.status_code == 413


@pytest.mark.parametrize("field, value", [("style", "../../etc/passwd"), ("style", "/etc/passwd"),
                                          ("method", "../optimize"), ("size", "99999")])
def test_path_traversal_and_bad_fields_are_refused(client, field, value):
    data = {"style": "udnie", field: value}
    r = client.post("/v1/jobs", files={"content": ("../../../etc/passwd", png_bytes())}, data=data)
    assert 400 <= r.status_code < 500 and "error" in r.json()


def test_traversal_in_urls_is_refused(client):
    for url in ["/v1/styles/..%2F..%2Fetc%2Fpasswd/thumbnail", "/v1/jobs/..%2F..%2Fetc%2Fpasswd",
                "/v1/jobs/" + "0" * 32 + "/result", "/static/..%2F..%2F__init__.py"]:
        r = client.get(url)
        assert r.status_code in (404, 400), url


def test_bad_uploads_from_the_corpus_get_4xx_json(client, tmp_path):
    cases = make_corpus(tmp_path / "corpus")
    for path, expected in cases:
        if expected != "error" or not path.is_file():
            continue
        r = client.post("/v1/jobs", files={"content": (path.name, path.read_bytes())}, data={"style": "udnie"})
        assert 400 <= r.status_code < 500, (path.name, r.status_code)
        assert r.json()["error"] and "\n" not in r.json()["error"]


def test_results_folder_is_capped(tmp_path, decoders):
    from huafeng.service.jobs import evict_oldest

    folder = tmp_path / "r"
    folder.mkdir()
    for i in range(5):
        (folder / f"{i}.png").write_bytes(b"x" * 1000)
        time.sleep(0.01)
    evict_oldest(folder, 2500)
    assert sorted(p.name for p in folder.iterdir()) == ["3.png", "4.png"]


def test_eviction_skips_files_that_vanish(tmp_path):
    """Two workers finishing at once both evict: a file the other one deleted between the listing and
    its stat is skipped (it was a FileNotFoundError that failed the job whose result was just written)."""
    from huafeng.service.jobs import evict_oldest

    folder = tmp_path / "r"
    folder.mkdir()
    for i in range(5):
        (folder / f"{i}.png").write_bytes(b"x" * 1000)
        time.sleep(0.01)

    def only(p):  # the other worker deletes 1.png just after this one listed it
        if p.name == "1.png":
            p.unlink()
        return True

    evict_oldest(folder, 2500, only=only)
    assert sorted(p.name for p in folder.iterdir()) == ["3.png", "4.png"]


def test_binds_to_localhost_by_default():
    assert ServiceConfig().host == "127.0.0.1"


def test_video_job_keeps_frames_and_audio(tmp_path, decoders):
    pytest.importorskip("av")
    from test_video import make_clip

    from huafeng.video import probe

    clip = tmp_path / "clip.mp4"
    make_clip(clip, frames=6)
    client = make_client(tmp_path, decoders)
    r = client.post("/v1/video-jobs", files={"video": ("../../x.mp4", clip.read_bytes())},
                    data={"style": "udnie", "consistency": "0.5"})
    assert r.status_code == 202, r.text
    job = wait(client, r.json()["id"], timeout=120)
    assert job["status"] == "done", job
    res = client.get(job["result"])
    assert res.status_code == 200 and res.headers["content-type"] == "video/mp4"
    out = tmp_path / "got.mp4"
    out.write_bytes(res.content)
    info = probe(out)
    assert info["frames"] == 6 and info["audio"]
    bad = client.post("/v1/video-jobs", files={"video": ("v.mp4", b"not a video")}, data={"style": "udnie"})
    assert 400 <= bad.status_code < 500 and "error" in bad.json()


def test_train_job_progress_and_cancel(tmp_path, decoders):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        save_image(torch.rand(1, 3, 48, 64), photos / f"{i}.png")
    cfg = ServiceConfig(results_dir=str(tmp_path / "results"), train_content_dir=str(photos),
                        train_overrides={"crop": 32, "batch": 1, "steps": 4, "checkpoint_every": 2})
    client = TestClient(create_app(cfg))
    r = client.post("/v1/train-jobs", files={"painting": ("p.png", png_bytes(64, 64))}, data={"minutes": "1"})
    assert r.status_code == 202, r.text
    job = wait(client, r.json()["id"], timeout=120)
    assert job["status"] == "done", job
    weights = client.get(job["result"])
    assert weights.status_code == 200 and len(weights.content) > 10_000
    # a long training run can be cancelled
    cfg2 = ServiceConfig(results_dir=str(tmp_path / "results2"), train_content_dir=str(photos),
                         train_overrides={"crop": 32, "batch": 1})
    client2 = TestClient(create_app(cfg2))
    jid = client2.post("/v1/train-jobs", files={"painting": ("p.png", png_bytes(64, 64))}, data={"minutes": "5"}).json()["id"]
    for _ in range(300):
        j = client2.get(f"/v1/jobs/{jid}").json()
        if j["status"] == "running" and j["progress"] > 0:
            break
        time.sleep(0.05)
    client2.delete(f"/v1/jobs/{jid}")
    assert wait(client2, jid)["status"] == "cancelled"
    # training is off unless the server was given photos
    off = make_client(tmp_path, decoders).post("/v1/train-jobs", files={"painting": ("p.png", png_bytes())})
    assert off.status_code == 422 and "not enabled" in off.json()["error"]


def test_results_carry_their_provenance_and_no_paths(client, tmp_path):
    """A PNG from the service says what made it (huafeng.provenance): the method, a bundled style by its
    name, an uploaded painting by its pixels' sha256, the settings; never the server's folders."""
    import io

    from huafeng.provenance import read_provenance

    r = client.post("/v1/jobs", files={"content": ("p.png", png_bytes())},
                    data={"style": "starry-night", "method": "optimize", "size": "32", "strength": "0.8"})
    job = wait(client, r.json()["id"])
    png = client.get(job["result"]).content
    out = tmp_path / "got.png"
    out.write_bytes(png)
    rec = read_provenance(out)
    assert rec.method == "optimize" and rec.styles[0]["name"] == "starry-night"
    assert rec.controls["strength"] == 0.8 and rec.settings["size"] == 32
    assert str(tmp_path).encode() not in png
    r = client.post("/v1/stylize", files={"content": ("p.png", png_bytes()), "style_file": ("mine.png", png_bytes(seed=1))},
                    data={"size": "48"})
    assert r.status_code == 200
    out.write_bytes(r.content)
    rec = read_provenance(out)
    assert "sha256" in rec.styles[0] and "name" not in rec.styles[0] and b"mine.png" not in r.content
    from PIL import Image
    assert "huafeng" in Image.open(io.BytesIO(r.content)).text
