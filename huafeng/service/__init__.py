"""``huafeng serve``: the web studio and REST API (FastAPI + uvicorn), bound to 127.0.0.1 by default."""
from __future__ import annotations

from .app import ServiceConfig, create_app

__all__ = ["ServiceConfig", "create_app", "serve"]


def serve(config: ServiceConfig = ServiceConfig()) -> None:
    import uvicorn

    uvicorn.run(create_app(config), host=config.host, port=config.port, log_level="warning",
                limit_concurrency=256, timeout_keep_alive=5)
