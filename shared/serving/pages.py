"""The pages a person tries the models with: an index of the models served, and each project's own page.

    GET /                       the index: every model, its versions, its measured result, a link to its page
    GET /pages/models.json      what the index shows, as JSON (a page reads its own entry from it)
    GET /pages/{name}/...       the page of model {name}: the files of its project's `page/` folder
    GET /static/...             what every page shares (shared/serving/static)

A page is plain HTML, CSS and JavaScript that calls the REST API like any client. The server finds a model's
page by path, never by import: `PAGES/<project>/page/`, where the project is the one named in the
SavedModel's `assets.extra/page.json` (written by `export`), or else the model's own name. The pages are sent
with a content security policy that lets them load nothing from any other origin.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from shared.serving.json import JSONResponse
from shared.serving.repository import ModelRepository, ModelVersion

STATIC = Path(__file__).resolve().parent / "static"
PROJECTS = Path(__file__).resolve().parents[2] / "projects"  # a path beside shared/, never an import
# nothing from another origin: no CDN, no font or script a page could fetch at run time
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def read_extra(model: ModelVersion, name: str) -> dict[str, Any]:
    """A JSON file of the SavedModel's assets.extra/, or {} when it has none (an older export)."""
    try:
        return json.loads((model.path / "assets.extra" / name).read_text())
    except (OSError, ValueError):
        return {}


def measured(model: ModelVersion) -> dict[str, Any]:
    """The run's metrics.json: beside the SavedModel in a run folder, inside it once published. Read on each
    request: `evaluate` may have measured the run again since the server started."""
    in_run = model.path.parent / "metrics.json"
    if model.path.name == "saved_model" and in_run.is_file():
        try:
            return json.loads(in_run.read_text())
        except ValueError:
            return {}
    return read_extra(model, "metrics.json")


def page_folder(model: ModelVersion, pages: Path) -> Path | None:
    project = str(read_extra(model, "page.json").get("project", model.name))
    if not project.isidentifier():  # a package name, never a path out of the pages folder
        return None
    folder = pages / project / "page"
    return folder if (folder / "index.html").is_file() else None


def models_json(repository: ModelRepository, pages: Path) -> list[dict[str, Any]]:
    entries = []
    for name, versions in sorted(repository.models.items()):
        newest = versions[max(versions)]
        info = read_extra(newest, "page.json")
        entries.append(
            {
                "name": name,
                "version": newest.version,
                "versions": sorted(versions, reverse=True),
                "project": info.get("project", name),
                "signatures": sorted(newest.signatures),
                "metrics": {
                    key: value
                    for key, value in measured(newest).items()
                    if key.startswith("test_")
                    and isinstance(value, (int, float))
                    and not any(word in key for word in ("size", "count", "examples", "errors"))
                },
                "info": info,
                "page": f"/pages/{name}/" if page_folder(newest, pages) else None,
            }
        )
    return entries


class PageFiles(StaticFiles):
    """StaticFiles (safe paths, caching headers, index.html for a folder) with the security headers."""

    async def get_response(self, path: str, scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


def page_routes(repository: ModelRepository, pages: Path | None = None) -> list:
    """The index, models.json, each model's page (a model whose project has no page gets none), static."""
    pages = PROJECTS if pages is None else pages

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers=SECURITY_HEADERS)

    async def listing(request: Request) -> Response:
        return JSONResponse(models_json(repository, pages))

    routes = [
        Route("/", index),
        Route("/pages/models.json", listing),
        Mount("/static", PageFiles(directory=STATIC)),
    ]
    for name, versions in sorted(repository.models.items()):
        folder = page_folder(versions[max(versions)], pages)
        if folder is not None:
            routes.append(Mount(f"/pages/{name}", PageFiles(directory=folder, html=True)))
    return routes
