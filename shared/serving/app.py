"""The ASGI app: one route table, one error map, CORS only when asked, metrics.

`create_app(repository, settings)` builds it, so tests can build one around any models.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.serving import kserve, stream, tfserving
from shared.serving.dataplane import DataPlane, ServerSettings
from shared.serving.errors import ServingError, error_response
from shared.serving.metrics import ServingMetrics
from shared.serving.pages import page_routes
from shared.serving.repository import ModelRepository

log = logging.getLogger("shared.serving")
Endpoint = Callable[[Request], Awaitable[Response]]


def create_app(repository: ModelRepository, settings: ServerSettings) -> Starlette:
    metrics = ServingMetrics()
    plane = DataPlane(repository, settings, metrics)

    def route(path: str, endpoint: Endpoint, api: str, methods: tuple[str, ...] = ("GET",)) -> Route:
        return Route(path, answered(endpoint, api, metrics), methods=list(methods))

    v2_model = "/v2/models/{name}"
    v2_version = "/v2/models/{name}/versions/{version}"
    pages = Path(settings.pages_dir) if settings.pages_dir else None
    routes = [
        *(
            route(p + ":stream", stream.handle, "v1_stream", ("POST",))
            for p in ("/v1/models/{name}", "/v1/models/{name}/versions/{version:int}")
        ),
        route("/v1/{path:path}", tfserving.handle, "v1", ("GET", "POST", "PUT", "DELETE", "PATCH")),
        route("/v2", kserve.server_metadata, "v2_server"),
        route("/v2/health/live", kserve.live, "v2_health"),
        route("/v2/health/ready", kserve.ready, "v2_health"),
        *(route(p, kserve.model_metadata, "v2_metadata") for p in (v2_model, v2_version)),
        *(route(p + "/ready", kserve.model_ready, "v2_ready") for p in (v2_model, v2_version)),
        *(route(p + "/infer", kserve.infer, "v2_infer", ("POST",)) for p in (v2_model, v2_version)),
        Route("/metrics", lambda request: Response(metrics.exposition(), media_type=metrics.content_type)),
        *page_routes(repository, pages),
    ]
    middleware = []
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Inference-Header-Content-Length"],  # KServe V2's binary data, both ways
                expose_headers=["Inference-Header-Content-Length"],
            )
        )

    @asynccontextmanager
    async def lifespan(app: Starlette):
        await plane.start()
        yield
        await plane.stop()

    async def not_found(request: Request, error: HTTPException) -> Response:
        metrics.observe("", "unknown", error.status_code, 0.0)
        return error_response(
            ServingError(error.status_code, f"{error.detail}: {request.method} {request.url.path}")
        )

    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={HTTPException: not_found},
    )
    app.state.plane = plane
    app.state.metrics = metrics
    return app


def answered(endpoint: Endpoint, api: str, metrics: ServingMetrics) -> Endpoint:
    """The endpoint with every error turned into `{"error": ...}` and its status, and the request counted."""

    async def call(request: Request) -> Response:
        start = time.perf_counter()
        try:
            response = await endpoint(request)
        except ServingError as e:
            response = error_response(e)
        except Exception:  # a bug, not the client's fault: the details go to the log, not to the client
            log.exception("%s %s failed", request.method, request.url.path)
            response = error_response(ServingError(500, "internal error; the server's log has the details"))
        model = getattr(request.state, "model", "")
        metrics.observe(
            model, getattr(request.state, "api", api), response.status_code, time.perf_counter() - start
        )
        return response

    return call
