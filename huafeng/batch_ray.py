"""The Ray backend of ``huafeng batch --ray [ADDRESS]``: actors holding one model each.

The driver (this process) keeps every guarantee of :mod:`huafeng.batch`: it reads each input and
sends its bytes to an actor, the actor stylizes and encodes exactly as a local run would and sends
the file's bytes back, and the driver writes them atomically and only then records the item done.
So a cluster needs huafeng installed on its nodes, but no shared filesystem, and a run killed at
any point resumes like a local one. Style paintings (and a ``weights`` file) that exist only on the
driver are shipped to the actors once, at start-up.

With no address a local Ray is started for the call and shut down after it; otherwise the run
joins the cluster at the address (``auto``, ``HOST:6379`` or ``ray://HOST:10001``).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from . import errors
from .errors import HuafengError, OutputError, SettingsError

LOCAL = "local"


class Stylizer:
    """A Ray actor's body: one model, loaded once; files in and out as bytes."""

    def __init__(self, method: str, settings: dict, threads: int, shipped: dict[str, bytes]) -> None:
        from .batch import _init_worker

        self.tmp = Path(tempfile.mkdtemp(prefix="huafeng-batch-"))
        self.error: tuple[str, str] | None = None
        # Files the driver holds (paintings, weights), written here under their own names.
        for key, data in shipped.items():
            folder = self.tmp / "shipped" / key.split("/", 1)[0]
            folder.mkdir(parents=True, exist_ok=True)
            (folder / key.split("/", 1)[1]).write_bytes(data)
        settings = {k: (self._local(v) if k in _SHIPPED_SETTINGS else v) for k, v in settings.items()}
        self.settings = settings
        try:
            _init_worker(method, settings, threads)
        except HuafengError as e:  # reported by ready(), so the batch stops with this one line
            self.error = (type(e).__name__, str(e))

    def _local(self, ref: str) -> str:
        """A shipped file's path on this node (a ref the driver rewrote as ``@KEY``), else ``ref``."""
        return str(self.tmp / "shipped" / ref[1:]) if isinstance(ref, str) and ref.startswith("@") else ref

    def ready(self) -> tuple[str, str] | None:
        return self.error

    def run(self, name: str, data: bytes, out_ext: str, styles: tuple[str, ...], method: str, strength: float,
            preserve_color: str, metadata: bool = True) -> dict:
        """Stylize one file's bytes; returns the record, with the output file's bytes under ``data``."""
        from .batch import _one

        work = Path(tempfile.mkdtemp(dir=self.tmp))
        try:
            src = work / "in" / name  # the file's own name, so error messages read as in a local run
            src.parent.mkdir()
            src.write_bytes(data)
            dst = work / ("out" + out_ext)
            styles = tuple(self._local(st) for st in styles)
            r = _one(str(src), str(dst), styles, method, strength, preserve_color, self.settings, metadata)
            if r["status"] == "done":
                r["data"] = dst.read_bytes()
            return r
        finally:
            shutil.rmtree(work, ignore_errors=True)


_SHIPPED_SETTINGS = ("weights",)


def _ship(styles: tuple[str, ...], settings: dict) -> tuple[tuple[str, ...], dict, dict[str, bytes]]:
    """Rewrite refs to driver-only files as ``@KEY`` (style specs keep their ``:weight``); returns
    ``(styles, settings, {KEY: bytes})``. Bundled names and trained-network names stay as they are."""
    from .methods.fast import gallery
    from .styles import BUNDLED, parse_style_spec

    shipped: dict[str, bytes] = {}

    def ship(ref: str) -> str:
        p = Path(ref).expanduser()
        if ref in BUNDLED or ref in gallery() or not p.is_file():
            return ref
        key = f"{len(shipped)}/{p.name}"
        shipped[key] = p.read_bytes()
        return "@" + key

    out_styles = []
    for spec in styles:
        ref, w = parse_style_spec(spec)
        new = ship(ref)
        out_styles.append(spec if new == ref else f"{new}:{w}")
    out_settings = {k: (ship(v) if k in _SHIPPED_SETTINGS and isinstance(v, str) else v) for k, v in settings.items()}
    return tuple(out_styles), out_settings, shipped


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, fsync and rename (never a torn file)."""
    from .atomic import new_file_mode, write_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_bytes(path, data, new_file_mode())
    except OSError as exc:
        raise OutputError(f"Cannot write {path.name}: {exc.strerror or exc}; check the folder's permissions "
                          "and free space.") from None


def _probe(address: str) -> None:
    """Fail in seconds when a HOST:PORT address does not answer (Ray itself retries for minutes)."""
    import socket

    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto" and the like: Ray resolves them itself, and fails quickly when nothing runs
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
    except OSError as e:
        raise SettingsError(f"cannot reach the Ray cluster at {address}: {e.strerror or e}; check the address "
                            "(e.g. auto, HOST:6379 or ray://HOST:10001) and that the cluster is up.") from None


def _connect(address: str, cpus: int) -> bool:
    """Start a local Ray (``address == "local"``) or join a cluster; True when this call started it."""
    try:
        import ray
    except ImportError:
        raise SettingsError("--ray needs Ray: pip install 'huafeng[ray]' (or pip install ray).") from None
    if ray.is_initialized():
        return False
    if address != LOCAL:
        _probe(address)
    try:
        if address == LOCAL:
            # (ray.init's annotation says int; it takes a level's name too, and its own default is one)
            ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False,
                     logging_level="ERROR")  # type: ignore[arg-type]
        else:
            ray.init(address=address, log_to_driver=False, logging_level="ERROR")  # type: ignore[arg-type]
    except (ConnectionError, ValueError, RuntimeError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SettingsError(f"cannot reach the Ray cluster at {address}: {msg}; check the address "
                            "(e.g. auto, HOST:6379 or ray://HOST:10001).") from None
    return True


def run_on_ray(s, todo: list[tuple[Path, Path]], record: Callable[[dict], None]) -> None:
    """Stylize ``todo`` on Ray actors; ``record`` is called once per item, after its file is in place."""
    if not todo:
        return
    local_cpus = max(1, os.cpu_count() or 1)
    started = _connect(s.ray, s.workers if s.workers > 0 else local_cpus)
    import ray
    from ray.exceptions import RayActorError

    try:
        n = s.workers if s.workers > 0 else max(1, int(ray.cluster_resources().get("CPU", 1)))
        n = min(n, len(todo))
        styles, settings, shipped = _ship(tuple(s.styles), s.settings)
        # One CPU and one torch thread per actor: many small actors use CPUs best for many files.
        actor_cls = ray.remote(num_cpus=1)(Stylizer)
        shipped_ref = ray.put(shipped)

        def new_actor():
            return actor_cls.remote(s.method, settings, 1, shipped_ref)

        actors = [new_actor() for _ in range(n)]
        for err in ray.get([a.ready.remote() for a in actors]):
            if err:
                raise getattr(errors, err[0], HuafengError)(err[1])
        items = iter(todo)
        pending: dict = {}

        def submit(actor) -> None:
            for src, dst in items:
                try:
                    data = src.read_bytes()
                except OSError as e:
                    record({"input": str(src), "output": str(dst), "status": "failed",
                            "error": f"Cannot read {src.name}: {e.strerror or e}; check the file."})
                    continue
                fut = actor.run.remote(src.name, data, dst.suffix, styles, s.method, s.strength, s.preserve_color,
                                       s.metadata)
                pending[fut] = (actor, src, dst)
                return

        for a in actors:
            submit(a)
        while pending:
            (fut,), _ = ray.wait(list(pending), num_returns=1)
            actor, src, dst = pending.pop(fut)
            try:
                r = ray.get(fut)
            except RayActorError as e:  # the process or node died mid-file: that file fails, a new actor goes on
                actor = new_actor()
                why = (str(e).strip().splitlines() or ["the actor died"])[0][:200]
                r = {"status": "failed", "error": f"the Ray worker stopped while stylizing {src.name} ({why}); "
                                                  "rerun to retry it."}
            r.update(input=str(src), output=str(dst))
            if r["status"] == "done":
                try:
                    write_atomic(dst, r.pop("data"))
                except OutputError as e:
                    r = {"input": str(src), "output": str(dst), "status": "failed", "error": str(e)}
            record(r)
            submit(actor)
    finally:
        if started:
            ray.shutdown()
