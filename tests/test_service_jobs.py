"""Job records that outlive the process (SQLite beside the results folder), the schema against what the
server really answers, and CPU work kept off the event loop."""
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jsonschema
import torch
from fastapi.testclient import TestClient

from huafeng.image import save_image
from huafeng.service import create_app
from huafeng.service.store import INTERRUPTED

from service_kit import make_client, png_bytes, service_config, wait

ROOT = Path(__file__).resolve().parents[1]


def _long_job(client, steps_size="96"):
    """A job that keeps the worker busy (optimize with many steps); returns its id once it runs."""
    r = client.post("/v1/jobs", files={"content": ("p.png", png_bytes())},
                    data={"style": "udnie", "method": "optimize", "size": steps_size})
    assert r.status_code == 202, r.text
    return wait(client, r.json()["id"], until=("queued",))["id"]


def test_a_finished_job_answers_after_a_restart(tmp_path, decoders):
    first = make_client(tmp_path, decoders)
    r = first.post("/v1/jobs", files={"content": ("p.png", png_bytes())}, data={"style": "udnie", "size": "32"})
    job = wait(first, r.json()["id"])
    assert job["status"] == "done", job
    png = first.get(job["result"]).content
    db = service_config(tmp_path, decoders).jobs_db
    assert db.parent == tmp_path and db.exists()  # beside the results folder, never inside it (the cap evicts files)
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    second = make_client(tmp_path, decoders)  # a new app over the same folder: the process restarted
    again = second.get(f"/v1/jobs/{job['id']}").json()
    assert {k: again[k] for k in ("status", "method", "result")} == {k: job[k] for k in ("status", "method", "result")}
    res = second.get(job["result"])
    assert res.status_code == 200 and res.headers["content-type"] == "image/png" and res.content == png


def test_a_second_app_leaves_a_live_apps_jobs_alone(tmp_path, decoders):
    """Only the jobs of a process that has stopped count as interrupted: an app still running (here,
    in this process) keeps its jobs, and the other app sees them move."""
    first = make_client(tmp_path, decoders, optimize_steps=400)
    job = _long_job(first)
    second = make_client(tmp_path, decoders)
    assert second.get(f"/v1/jobs/{job}").json()["status"] == "running"
    first.delete(f"/v1/jobs/{job}")
    assert wait(first, job)["status"] == "cancelled"
    assert second.get(f"/v1/jobs/{job}").json()["status"] == "cancelled"


_SERVER = """
import json, sys
import uvicorn
from huafeng.service import ServiceConfig, create_app
cfg = json.loads(sys.argv[1])
for settings in cfg["config"]["method_defaults"].values():  # JSON made the tuples lists
    settings.update({k: tuple(v) for k, v in settings.items() if isinstance(v, list)})
uvicorn.run(create_app(ServiceConfig(**cfg.pop("config"))), host="127.0.0.1", port=cfg["port"], log_level="warning")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_kill_9_mid_job_then_restart(tmp_path, decoders):
    """The restart test: a server killed with SIGKILL while one job runs and another waits. The next app
    over the folder serves the finished job's result, reports both unfinished jobs failed (interrupted),
    and leaves the results folder holding exactly the finished results."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        save_image(torch.rand(1, 3, 48, 64), photos / f"{i}.png")
    cfg = service_config(tmp_path, decoders, optimize_steps=5000, train_content_dir=str(photos),
                         train_overrides={"crop": 32, "batch": 1})
    port = _free_port()
    arg = json.dumps({"port": port, "config": {k: getattr(cfg, k) for k in
                                               ("results_dir", "method_defaults", "train_content_dir", "train_overrides")}})
    server = subprocess.Popen([sys.executable, "-c", _SERVER, arg], cwd=ROOT)
    try:
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=60) as http:
            for _ in range(600):
                try:
                    if http.get("/v1/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            done = http.post("/v1/jobs", files={"content": ("p.png", png_bytes())}, data={"style": "udnie", "size": "32"})
            done = wait(http, done.json()["id"])
            png = http.get(done["result"]).content
            running = wait(http, _long_job(http), until=("queued",))
            assert running["status"] == "running", running
            queued = http.post("/v1/train-jobs", files={"painting": ("p.png", png_bytes(64, 64))}, data={"minutes": "1"})
            assert queued.status_code == 202 and queued.json()["status"] == "queued", queued.text
            results = Path(cfg.results_dir)
            assert len(list(results.iterdir())) == 3  # the finished result, the waiting job's painting and run folder
        os.kill(server.pid, signal.SIGKILL)
        server.wait(30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(30)
    after = TestClient(create_app(cfg))
    for job_id in (running["id"], queued.json()["id"]):
        j = after.get(f"/v1/jobs/{job_id}").json()
        assert j["status"] == "failed" and j["error"] == INTERRUPTED, j
        assert after.get(f"/v1/jobs/{job_id}/result").status_code == 409
    res = after.get(done["result"])
    assert res.status_code == 200 and res.content == png
    assert sorted(p.name for p in results.iterdir()) == [f"{done['id']}.png"]  # the waiting job's scratch went too
    locks = list(tmp_path.glob(cfg.jobs_db.name + "-*.lock"))
    assert len(locks) == 1  # the killed server's claim was cleared; the one left is the new app's


# ------------------------------------------------------------------------------------ the schema
def _operation(doc, method: str, url: str):
    """The documented operation (and its path template) that ``method url`` reaches."""
    import re

    for template, ops in doc["paths"].items():
        if re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)), url):
            return template, ops.get(method.lower())
    raise AssertionError(f"{url} is not in the schema")


def _check(doc, method: str, url: str, r: httpx.Response, provoked: set):
    """The response's status is documented for its operation, with its media type, and a JSON body
    matches the documented schema."""
    template, op = _operation(doc, method, url)
    assert op is not None, (method, template)
    documented = op["responses"].get(str(r.status_code))
    assert documented is not None, f"{method} {template} answered {r.status_code}, documented: {sorted(op['responses'])}"
    media = r.headers["content-type"].split(";")[0]
    assert media in documented.get("content", {}), (method, template, r.status_code, media)
    if media == "application/json":
        schema = {**documented["content"][media]["schema"], "components": doc["components"]}
        jsonschema.validate(r.json(), schema)
    provoked.add(r.status_code)


def test_the_schema_documents_every_status_the_server_answers(tmp_path, decoders):
    client = make_client(tmp_path, decoders, optimize_steps=400, max_queue=2, max_upload_bytes=20_000,
                         request_timeout=0.5)
    doc = client.get("/openapi.json").json()
    provoked: set[int] = set()

    def send(method, url, **kw):
        r = client.request(method, url, **kw)
        _check(doc, method, url, r, provoked)
        return r

    photo = {"content": ("p.png", png_bytes())}
    assert send("POST", "/v1/jobs", files={"content": ("p.png", png_bytes(100, 100))}, data={"style": "udnie"}).status_code == 413
    assert send("POST", "/v1/jobs", files={"content": ("p.png", b"not an image")}, data={"style": "udnie"}).status_code == 415
    for url in ("/v1/jobs", "/v1/stylize", "/v1/video-jobs"):  # neither style nor style_file
        files = {"video": ("v.mp4", b"x")} if "video" in url else photo
        r = send("POST", url, files=files)
        assert r.status_code == 422 and "style" in r.json()["error"]
    for url in ("/v1/jobs/" + "0" * 32, "/v1/jobs/" + "0" * 32 + "/result", "/v1/styles/nope/thumbnail",
                "/v1/models/nope.onnx"):
        assert send("GET", url).status_code == 404
    assert send("DELETE", "/v1/jobs/" + "0" * 32).status_code == 404
    thumb = client.get("/v1/styles").json()[0]["thumbnail"]
    assert send("GET", thumb).status_code == 200
    busy = _long_job(client)
    try:
        r = send("POST", "/v1/stylize", files=photo, data={"style": "udnie", "size": "32"})
        assert r.status_code == 504  # waited behind the busy worker past the request timeout
        assert client.get("/v1/health").json()["queued"] == 0  # the stopped job left the queue at once
        accepted = []
        for _ in range(6):  # fill the queue
            r = send("POST", "/v1/jobs", files=photo, data={"style": "udnie", "size": "32"})
            if r.status_code == 429:
                break
            accepted.append(r.json()["id"])
        assert r.status_code == 429 and r.headers["retry-after"] and accepted
        assert send("GET", f"/v1/jobs/{accepted[0]}/result").status_code == 409  # queued: no result yet
        assert send("GET", f"/v1/jobs/{accepted[0]}").json()["status"] == "queued"
    finally:
        for j in (busy, *accepted):
            client.delete(f"/v1/jobs/{j}")
    r = send("POST", "/v1/jobs", files=photo, data={"style": "udnie", "size": "32"})
    done = wait(client, r.json()["id"])
    assert send("GET", done["result"]).headers["content-type"] == "image/png"
    assert {413, 415, 422, 404, 504, 429, 409, 200, 202} <= provoked
    # 405: the Allow header names every method the path answers, as documented
    for method, url in (("GET", "/v1/jobs"), ("PUT", "/v1/jobs/" + "0" * 32), ("POST", "/v1/health"),
                        ("DELETE", "/v1/jobs/" + "0" * 32 + "/result")):
        r = client.request(method, url)
        template, _ = _operation(doc, "get", url)
        allow = {m.strip() for m in r.headers["allow"].split(",")}
        assert r.status_code == 405 and "error" in r.json()
        assert allow - {"HEAD"} == {m.upper() for m in doc["paths"][template]}, (url, allow)
    r = client.post("/static/studio.js")  # the static files are not in the schema, and say so too
    assert r.status_code == 405 and {m.strip() for m in r.headers["allow"].split(",")} == {"GET", "HEAD"}


def test_the_schema_says_a_style_is_required(tmp_path, decoders):
    """The forms' rule is in their schemas: a generated client (or any validator) knows that a request
    with neither style nor style_file (nor, for a job, a GAN model with method auto or gan) is invalid,
    as the server answers (422); and which style names exist."""
    from huafeng.methods import METHODS
    from huafeng.methods.fast import gallery as fast_gallery
    from huafeng.methods.gan import gallery as gan_gallery
    from huafeng.service.routes_stylize import SYNC_METHODS
    from huafeng.styles import BUNDLED
    from huafeng.video import VIDEO_METHODS

    client = make_client(tmp_path, decoders)
    doc = client.get("/openapi.json").json()
    for url in ("/v1/jobs", "/v1/stylize", "/v1/video-jobs"):
        ref = doc["paths"][url]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
        schema = {**doc["components"]["schemas"][ref.rsplit("/", 1)[1]], "components": doc["components"]}
        upload = "video" if "video" in url else "content"

        def valid(**form):
            return jsonschema.Draft202012Validator(schema).is_valid({upload: "x", **form})

        assert not valid() and not valid(method="fast") and not valid(style="")
        assert valid(style="udnie") and valid(style="udnie, starry-night") and valid(style_file="x")
        assert not valid(style="../../etc/passwd") and not valid(style="udnie", method="../optimize")
        for model in gan_gallery():
            assert valid(model=model) == (url == "/v1/jobs") and not valid(model=model, method="photoreal")
        runs = {"/v1/jobs": METHODS, "/v1/stylize": SYNC_METHODS, "/v1/video-jobs": VIDEO_METHODS}[url]
        for m in METHODS:  # the methods each form runs, as the server decides
            assert valid(style_file="x", method=m) == (m in runs and m != "fast"), (url, m)
        for name in BUNDLED:  # fast: only styles with a trained network
            assert valid(style=name, method="fast") == ("fast" in runs and name in fast_gallery()), (url, name)
    for model in list(gan_gallery())[:1]:  # the server agrees with the schema on the model rule
        ok = client.post("/v1/jobs", files={"content": ("p.png", png_bytes())}, data={"model": model, "size": "32"})
        assert ok.status_code == 202 and ok.json()["method"] == "gan", ok.text
        bad = client.post("/v1/jobs", files={"content": ("p.png", png_bytes())},
                          data={"model": model, "method": "photoreal"})
        assert bad.status_code == 422 and "style" in bad.json()["error"]
        wait(client, ok.json()["id"])
    untrained = next((n for n in BUNDLED if n not in fast_gallery()), None)
    if untrained:  # ... and the server refuses what the schema calls invalid
        r = client.post("/v1/jobs", files={"content": ("p.png", png_bytes())}, data={"style": untrained, "method": "fast"})
        assert r.status_code == 422
    r = client.post("/v1/stylize", files={"content": ("p.png", png_bytes())}, data={"style": "udnie", "method": "optimize"})
    assert r.status_code == 422


def test_decoding_and_building_run_off_the_event_loop(tmp_path, decoders, monkeypatch):
    import asyncio

    from huafeng.service import params

    where = []

    def watch(fn):
        def wrapped(*a, **kw):
            try:
                asyncio.get_running_loop()
                where.append((fn.__name__, "event loop"))
            except RuntimeError:
                where.append((fn.__name__, "worker thread"))
            return fn(*a, **kw)
        return wrapped

    monkeypatch.setattr(params, "read_image", watch(params.read_image))
    monkeypatch.setattr(params, "get_stylizer", watch(params.get_stylizer))
    client = make_client(tmp_path, decoders)
    r = client.post("/v1/jobs", files={"content": ("p.png", png_bytes()), "style_file": ("s.png", png_bytes(seed=1))},
                    data={"method": "photoreal", "size": "32"})
    assert r.status_code == 202, r.text
    assert {name for name, _ in where} == {"read_image", "get_stylizer"}
    assert {place for _, place in where} == {"worker thread"}, where
    wait(client, r.json()["id"])


def test_the_job_table_keeps_the_newest_finished_records(tmp_path):
    from huafeng.service.store import JobStore

    store = JobStore(tmp_path / "jobs.db", keep=5)
    for i in range(199):
        store.insert(f"{i:032x}", "image", "fast", created=float(i), scratch=[])
        if i != 7:  # one job still queued: never pruned
            store.update(f"{i:032x}", status="done", result=f"{i:032x}.png")
    store.insert(f"{199:032x}", "image", "fast", created=199.0, scratch=[])  # the 200th insert prunes
    kept = [i for i in range(200) if store.get(f"{i:032x}") is not None]
    assert kept == [7, 195, 196, 197, 198, 199]
    store.close()
    assert not list(tmp_path.glob("jobs.db-*.lock"))  # a closed store gives up its claim
