"""Fixtures that several test files share."""
import socket
import threading
import time
from contextlib import contextmanager

import pytest
import torch


@contextmanager
def single_thread():
    """torch on one thread for the block: tiny tensors gain nothing from threads, and on a busy CPU
    the thread pool's barriers made small tests many times slower (42 s vs 4 s for test_metrics)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


@pytest.fixture()
def one_thread():
    with single_thread():
        yield


@pytest.fixture()
def serve():
    """``serve(app) -> "http://127.0.0.1:PORT"``: the ASGI app on a free local port, in a thread,
    stopped when the test ends."""
    import uvicorn

    running = []

    def start(app) -> str:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        t = threading.Thread(target=srv.run, daemon=True)
        t.start()
        running.append((srv, t))
        for _ in range(200):
            if srv.started:
                break
            time.sleep(0.05)
        return f"http://127.0.0.1:{port}"

    yield start
    for srv, t in running:
        srv.should_exit = True
        t.join(10)


@pytest.fixture(scope="session")
def decoders(tmp_path_factory):
    """Untrained photoreal decoders in a file: the service's mechanics don't depend on the shipped weights."""
    from huafeng.methods.photoreal import LEVELS, Decoder
    from huafeng.weights import save_file

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "dec.safetensors"
    save_file({f"{lv}.{k}": v for lv in LEVELS for k, v in Decoder(lv).state_dict().items()}, path)
    return str(path)
