"""Helpers for the service tests: small PNG uploads, a client over a results folder, waiting on a job."""
import io
import time

import torch
from fastapi.testclient import TestClient

from huafeng.service import ServiceConfig, create_app


def png_bytes(h=40, w=56, seed=0) -> bytes:
    torch.manual_seed(seed)
    buf = io.BytesIO()
    from huafeng.image import to_pil

    to_pil(torch.rand(1, 3, h, w)).save(buf, format="PNG")
    return buf.getvalue()


def service_config(tmp_path, decoders, optimize_steps=4, **kw) -> ServiceConfig:
    """The photoreal method on the untrained ``decoders`` (the API's mechanics don't depend on shipped weights)."""
    return ServiceConfig(results_dir=str(tmp_path / "results"),
                         method_defaults={"photoreal": {"weights": decoders, "levels": ("L2", "L1")},
                                          "optimize": {"steps": optimize_steps}}, **kw)


def make_client(tmp_path, decoders, optimize_steps=4, **kw):
    return TestClient(create_app(service_config(tmp_path, decoders, optimize_steps, **kw)))


def wait(client, job_id, timeout=60, until=("queued", "running")):
    """The job's state once it is no longer in ``until`` (by default: once it has finished)."""
    end = time.time() + timeout
    while time.time() < end:
        j = client.get(f"/v1/jobs/{job_id}").json()
        if j["status"] not in until:
            return j
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} stayed {until}")
