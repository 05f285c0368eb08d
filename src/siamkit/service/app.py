"""The ASGI app: thin FastAPI routes over `SimilarityService`, with batching, limits, auth and metrics.

`create_app(run, index, settings)` returns a FastAPI app; `siamkit serve`
runs it on uvicorn (`app_from_env` builds it in each worker from
`SIAMKIT_SERVE_*` environment variables). Routes, all answering JSON
unless noted:

| route | body (multipart files, or JSON with base64 files) | answer |
| --- | --- | --- |
| `POST /v1/embed` | `files` | `{"dim", "embeddings"}` |
| `POST /v1/compare` | `a`, `b` | score, distance, similarity, threshold and its source, decision |
| `POST /v1/search` | `files`, `k`, `filter` | per query: id, label, distance, score, match, thumbnail URL |
| `POST /v1/index/items` (key) | `files`, `labels`, `metadata` | the new ids |
| `DELETE /v1/index/items/{id}` (key) | | the removed id |
| `GET /v1/index/items/{id}/thumbnail` | | a PNG |
| `GET /v1/model` | | the model card |
| `GET /report` | | the run's `report.html` (HTML), when it has one |
| `GET /health/live`, `/health/ready`, `/metrics` | | liveness, readiness, Prometheus text |
| `GET /`, `/docs`, `/openapi.json` | | the web page, the API's documentation |

Example:

>>> app = create_app(Run("runs/digits"), "digits.index", Settings(max_batch=64))   # doctest: +SKIP
>>> uvicorn.run(app, host="127.0.0.1", port=8000)                                   # doctest: +SKIP
"""

import contextlib
import hmac
import importlib.resources
import json
import logging
import os
import re
import time
import uuid
from typing import Annotated, Literal

import pydantic
from fastapi import Depends, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from ..errors import ConfigError, DataError, SiamkitError
from .batching import Batcher, Busy
from .core import CLIENT_ERRORS, Limits, NotFound, SimilarityService, Timeout, TooLarge, Upload, decode_file

log = logging.getLogger("siamkit.service")
STATIC = importlib.resources.files(__package__) / "static"


class Settings(BaseSettings):
    """How the app serves; every field also reads `SIAMKIT_SERVE_<NAME>` from the environment.

    The API key comes from `api_key` (`SIAMKIT_SERVE_API_KEY`) or the first
    line of `api_key_file`, never from a command line. Without one, index
    writes are refused.
    """

    model_config = SettingsConfigDict(env_prefix="SIAMKIT_SERVE_")

    run_dir: str | None = pydantic.Field(None, description="the run, for `app_from_env`")
    index_dir: str | None = pydantic.Field(None, description="the index folder or Qdrant URI, for `app_from_env`")
    threshold: float | None = None
    method: Literal["accuracy", "eer", "far"] | None = None
    invert: bool | None = None
    api_key: pydantic.SecretStr | None = None
    api_key_file: str | None = None
    protect_reads: bool = False
    cors_origins: list[str] = []
    max_batch: int = pydantic.Field(32, ge=1)
    max_wait_ms: float = pydantic.Field(5.0, ge=0)
    queue_size: int = pydantic.Field(256, ge=1)
    max_upload_mb: float = pydantic.Field(32.0, gt=0)
    max_files: int = pydantic.Field(64, ge=1)
    max_pixels: int = pydantic.Field(25_000_000, ge=1)
    max_k: int = pydantic.Field(100, ge=1)
    timeout_s: float = pydantic.Field(30.0, gt=0)
    thumbnail_px: int = pydantic.Field(160, ge=8, le=1024)

    def key(self):
        """The API key as bytes, or None."""
        if self.api_key is not None:
            key = self.api_key.get_secret_value()
        elif self.api_key_file is not None:
            try:
                with open(self.api_key_file, encoding="utf-8") as f:
                    key = f.readline().strip()
            except OSError as err:
                raise ConfigError(f"cannot read the API key file {self.api_key_file}: {err.strerror}") from None
        else:
            return None
        if len(key) < 16:
            raise ConfigError("the API key must have at least 16 characters; generate one with "
                              "`python -c \"import secrets; print(secrets.token_urlsafe(32))\"`")
        return key.encode()

    def limits(self):
        return Limits(self.max_files, self.max_pixels, self.max_k, self.timeout_s, self.thumbnail_px)


# -- schemas ------------------------------------------------------------------


class FileB64(pydantic.BaseModel):
    """A file in the JSON form: its name (shown in messages) and its bytes in base64."""

    name: str = pydantic.Field(examples=["query.png"])
    data: str = pydantic.Field(description="the file's bytes, base64-encoded")


class EmbedRequest(pydantic.BaseModel):
    files: list[FileB64] = pydantic.Field(min_length=1)


class CompareRequest(pydantic.BaseModel):
    a: FileB64 = pydantic.Field(description="read by the first tower")
    b: FileB64 | None = pydantic.Field(None, description="read by the second tower of a two-tower run, else the first")
    b_item: int | None = pydantic.Field(None, ge=0, description="an index item's id, in place of b: its own file")


class SearchRequest(pydantic.BaseModel):
    files: list[FileB64] = pydantic.Field(min_length=1)
    k: int = pydantic.Field(10, ge=1, strict=True, description="results per query; capped at the service's max_k")
    filter: dict[str, str | int | bool | list[str | int | bool]] | None = pydantic.Field(
        None, description="only items whose metadata matches, e.g. {\"label\": \"shoes\"}", examples=[{"label": "3"}]
    )


class NewItem(pydantic.BaseModel):
    file: FileB64
    label: str | None = None
    metadata: dict[str, str | int | float | bool | None] = {}


class AddRequest(pydantic.BaseModel):
    items: list[NewItem] = pydantic.Field(min_length=1)


class EmbedResponse(pydantic.BaseModel):
    dim: int
    embeddings: list[list[float]]


class CompareResponse(pydantic.BaseModel):
    score: float = pydantic.Field(description="the pair head's output")
    output_kind: str
    distance: float = pydantic.Field(description="between the embeddings, in the run's distance")
    distance_name: str
    similarity: float
    similarity_kind: str
    threshold: float
    threshold_source: str = pydantic.Field(examples=["calibration.json (accuracy)", "given"])
    higher_is_similar: bool
    same: bool
    decision: Literal["same", "different"]


class SearchResult(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")  # the item's own metadata

    rank: int
    id: int
    label: str | int | None = None
    distance: float
    score: float | None = pydantic.Field(None, description="the pair head's score; with a threshold only")
    match: bool | None = pydantic.Field(None, description="same at the threshold; with a threshold only")
    thumbnail: str | None = pydantic.Field(None, description="URL of the item's thumbnail")


class SearchQuery(pydantic.BaseModel):
    query: str
    results: list[SearchResult]


class SearchResponse(pydantic.BaseModel):
    distance: str
    k: int
    queries: list[SearchQuery]


class AddResponse(pydantic.BaseModel):
    ids: list[int]
    index_size: int


class RemoveResponse(pydantic.BaseModel):
    id: int
    index_size: int


class Threshold(pydantic.BaseModel):
    value: float
    source: str


class IndexCard(pydantic.BaseModel):
    size: int
    distance: str
    backend: str
    writable: bool


class ModelCard(pydantic.BaseModel):
    run: str
    backbone: str | None
    distance: str
    higher_is_similar: bool
    two_tower: bool
    towers: dict[str, Literal["image", "audio"]]
    input_shape: list[int]
    input_shape_b: list[int] | None
    config: dict
    threshold: Threshold | None
    calibration: dict | None
    metrics: dict[str, float]
    fingerprint: str
    report: str | None = pydantic.Field(description="where the run's HTML report is served, when it has one")
    index: IndexCard | None


class Ready(pydantic.BaseModel):
    status: str
    model: bool
    index: bool | None


class ErrorBody(pydantic.BaseModel):
    error: str = pydantic.Field(description="what went wrong and what to change")
    request_id: str


_ERRORS = {code: {"model": ErrorBody} for code in (400, 401, 403, 404, 413, 415, 503, 504)}


# -- errors -------------------------------------------------------------------


class Unauthorized(SiamkitError):
    """No API key, or a wrong one, where one is needed (401)."""


class Forbidden(SiamkitError):
    """An index write on a service without an API key (403)."""


class UnsupportedMedia(DataError):
    """A body that is neither multipart nor JSON (415)."""


_STATUS = ((Unauthorized, 401), (Forbidden, 403), (NotFound, 404), (TooLarge, 413), (UnsupportedMedia, 415),
           (Busy, 503), (Timeout, 504))


def _error(request, status, message, headers=None):
    request_id = getattr(request.state, "request_id", "-")
    return JSONResponse({"error": message, "request_id": request_id}, status, headers=headers)


def _where(loc):
    """`items[0].file` from pydantic's `("items", 0, "file")`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "the request body"


def _is_file(loc):
    return bool(loc) and (loc[-1] in ("a", "b", "file") or (isinstance(loc[-1], int) and loc[-2:-1] == ("files",)))


def _validation_message(errors):
    """One sentence per pydantic error, in the words of the JSON form."""
    out = []
    for err in errors:
        loc = tuple(p for p in err["loc"] if p != "body")
        where = _where(loc)
        if err["type"] == "missing":
            out.append(f"the request body lacks {where!r}" if len(loc) == 1 else f"{where} is missing")
        elif err["type"] == "too_short":
            out.append(f"{where} must be a non-empty list")
        elif err["type"] == "model_type" and _is_file(loc):
            out.append(f"{where} must be an object {{\"name\": \"x.png\", \"data\": \"<base64>\"}}, "
                       f"got {str(err.get('input'))[:80]!r}")
        elif loc == ("k",):
            out.append(f"k must be a positive integer, got {err.get('input')!r}")
        else:
            out.append(f"{where}: {err['msg']}")
    return "; ".join(out)


# -- metrics ------------------------------------------------------------------


class _Metrics:
    def __init__(self, batcher_depth):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("siamkit_requests", "HTTP requests", ["method", "route", "status"], registry=r)
        self.latency = Histogram("siamkit_request_seconds", "request latency", ["method", "route"], registry=r,
                                 buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.errors = Counter("siamkit_errors", "answers 4xx (client) and 5xx (server)", ["route", "kind"],
                              registry=r)
        self.batch = Histogram("siamkit_batch_rows", "inputs per model call", registry=r,
                               buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
        Gauge("siamkit_queue_depth", "requests waiting for the model", registry=r).set_function(batcher_depth)

    def observe(self, method, route, status, seconds):
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)
        if status >= 400:
            self.errors.labels(route, "server" if status >= 500 else "client").inc()


class _Edge:
    """Outermost layer: request ids, the body size limit, metrics, and 500s without internals."""

    def __init__(self, app, metrics, max_bytes):
        self.app, self.metrics, self.max_bytes = app, metrics, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if re.fullmatch(r"[\w.-]{1,64}", given) else uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        started, status, begin = False, 500, time.perf_counter()

        async def send_with_id(message):
            nonlocal started, status
            if message["type"] == "http.response.start":
                started, status = True, message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        received = 0

        async def receive_bounded():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise TooLarge(f"the request body is over the limit of {self.max_bytes} bytes; send less")
            return message

        try:
            length = int(headers.get(b"content-length", b"0"))
        except ValueError:
            length = -1
        try:
            if length < 0:
                await self._answer(send_with_id, 400, "the Content-Length header must be a non-negative integer",
                                   request_id)
            elif length > self.max_bytes:
                await self._drain(receive)  # a client still sending would not read the answer otherwise
                await self._answer(send_with_id, 413, f"the request body has {length} bytes; the limit is "
                                   f"{self.max_bytes}; send fewer or smaller files", request_id)
            else:
                await self.app(scope, receive_bounded, send_with_id)
        except Exception:  # a bug, not the client's input: logged with the request id, answered without internals
            log.exception("request %s (%s %s) failed", request_id, scope["method"], scope["path"])
            if not started:
                await self._answer(send_with_id, 500, f"internal error; quote request id {request_id} to the "
                                   "service's operator", request_id)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or ("/static" if scope["path"].startswith("/static/") else "other")
            self.metrics.observe(scope["method"], name, status, time.perf_counter() - begin)

    @staticmethod
    async def _drain(receive):
        while True:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body"):
                return

    @staticmethod
    async def _answer(send, status, message, request_id):
        body = json.dumps({"error": message, "request_id": request_id}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


# -- the app ------------------------------------------------------------------


def create_app(run, index=None, settings=None):
    """A FastAPI app serving `run` (and `index`) under `settings`.

    Args:
        run: a `siamkit.runs.Run` or its directory.
        index: an index folder or Qdrant URI (from `siamkit index build`;
            writable through the API), an opened index (read-only), or None.
        settings: a `Settings`; default: `Settings()` (from the environment).

    The model is loaded here, once; the batcher starts with the app.
    """
    from ..index import open_index
    from ..runs import Run

    settings = settings or Settings()
    run = run if isinstance(run, Run) else Run(run)
    index_dir = None
    if isinstance(index, (str, os.PathLike)):
        index_dir, index = os.fspath(index), open_index(os.fspath(index))
    key = settings.key()
    if settings.protect_reads and key is None:
        raise ConfigError("--protect-reads needs an API key: give --api-key-file FILE or set SIAMKIT_SERVE_API_KEY")
    service = SimilarityService(run, index, settings.threshold, settings.method, settings.invert, index_dir,
                                settings.limits())
    run.model  # noqa: B018  (loaded once per worker, before the first request)
    metrics = _Metrics(lambda: 0 if service.batcher is None else service.batcher.depth)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        service.batcher = Batcher(service.embed_now, settings.max_batch, settings.max_wait_ms, settings.queue_size,
                                  on_batch=metrics.batch.observe)
        app.state.ready = True
        try:
            yield
        finally:
            app.state.ready = False
            batcher, service.batcher = service.batcher, None
            await run_in_threadpool(batcher.close)

    app = FastAPI(
        title="siamkit similarity service",
        summary=f"embed, compare and search with the run {service.run_name}",
        version="1",
        lifespan=lifespan,
        openapi_tags=[{"name": "similarity"}, {"name": "index"}, {"name": "service"}],
    )
    app.state.service, app.state.settings, app.state.ready = service, settings, False
    _add_error_handlers(app, service)
    _add_routes(app, service, settings, key, metrics)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["X-API-Key", "Authorization", "Content-Type", "X-Request-ID"])
    app.add_middleware(_Edge, metrics=metrics, max_bytes=int(settings.max_upload_mb * 2**20))
    _document_bodies(app)
    return app


def app_from_env():
    """`create_app` from `SIAMKIT_SERVE_RUN_DIR`, `SIAMKIT_SERVE_INDEX_DIR` and the other settings (for workers)."""
    settings = Settings()
    if settings.run_dir is None:
        raise ConfigError("set SIAMKIT_SERVE_RUN_DIR to the run directory")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return create_app(settings.run_dir, settings.index_dir, settings)


def _add_error_handlers(app, service):
    async def client_error(request, err):
        status = next((code for kind, code in _STATUS if isinstance(err, kind)), 400)
        headers = {"Retry-After": "1"} if status == 503 else None
        return _error(request, status, service.public(str(err)), headers)

    for kind in CLIENT_ERRORS:
        app.add_exception_handler(kind, client_error)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, err):
        return _error(request, 400, _validation_message(err.errors()))

    @app.exception_handler(HTTPException)
    async def http_error(request, err):
        if err.status_code in (404, 405) and request.scope.get("route") is None:
            routes = sorted(f"{m} {r.path}" for r in app.routes if getattr(r, "include_in_schema", False)
                            for m in sorted(r.methods - {"HEAD"}))
            message = f"no {request.method} {request.url.path}; this service answers {', '.join(routes)} (see /docs)"
            return _error(request, 404 if err.status_code == 404 else 405, message)
        return _error(request, err.status_code, str(err.detail))


def _auth(key, needed):
    """A dependency: the API key is required when `needed()`; compared in constant time."""

    async def check(request: Request):
        if not needed():
            return
        if key is None:
            raise Forbidden("index writes are off: this service has no API key; start it with --api-key-file FILE "
                            "or set SIAMKIT_SERVE_API_KEY")
        given = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(given.encode("utf-8", "replace"), key):
            raise Unauthorized("missing or wrong API key; send it in the X-API-Key header "
                               "(or Authorization: Bearer KEY)")

    return Depends(check)


async def _form_or_json(request, model, max_files):
    """`(files, fields)` of a multipart body, or the validated `model` of a JSON body."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        try:
            form = await request.form(max_files=max_files, max_fields=4 * max_files + 8)
        except HTTPException as err:  # the multipart parser's limits and syntax errors
            if "Too many files" in str(err.detail):
                raise TooLarge(f"more than {max_files} files in one request; send at most {max_files}") from None
            raise DataError(f"the multipart body cannot be read: {err.detail}") from None
        files, fields = {}, {}
        for name, value in form.multi_items():
            if isinstance(value, str):
                fields.setdefault(name, []).append(value)
            else:
                files.setdefault(name, []).append(Upload(value.filename or name, await value.read()))
        return files, fields
    if ctype not in ("application/json", ""):
        raise UnsupportedMedia(f"send multipart/form-data or application/json, not {ctype!r}")
    try:
        body = json.loads(await request.body())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:  # RecursionError: absurd nesting
        raise DataError(f"the request body is not JSON: {err}") from None
    if not isinstance(body, dict):
        raise DataError(f"the request body must be a JSON object, got {str(body)[:80]!r}")
    try:
        return model.model_validate(body)
    except pydantic.ValidationError as err:
        raise DataError(_validation_message(err.errors())) from None


def _decoded(items, where):
    return [decode_file(item.model_dump(), f"{where}[{i}]") for i, item in enumerate(items)]


def _one(files, name):
    got = files.get(name, [])
    if len(got) != 1:
        raise DataError(f"send exactly one file in the form field {name!r}, got {len(got)}")
    return got[0]


def _add_routes(app, service, settings, key, metrics):
    read = _auth(key, lambda: settings.protect_reads)
    write = _auth(key, lambda: True)
    call = run_in_threadpool

    @app.post("/v1/embed", response_model=EmbedResponse, tags=["similarity"], dependencies=[read], responses=_ERRORS,
              summary="Embeddings of files", openapi_extra=_body_doc(EmbedRequest, {"files": "files"}))
    async def embed(request: Request):
        got = await _form_or_json(request, EmbedRequest, settings.max_files)
        files = got[0].get("files", []) if isinstance(got, tuple) else _decoded(got.files, "files")
        return await call(service.embed_uploads, files)

    @app.post("/v1/compare", response_model=CompareResponse, tags=["similarity"], dependencies=[read],
              responses=_ERRORS, summary="Compare two files: score, distance and decision",
              openapi_extra=_body_doc(CompareRequest, {"a": "file", "b": "file", "b_item": "id"}))
    async def compare(request: Request):
        got = await _form_or_json(request, CompareRequest, settings.max_files)
        if isinstance(got, tuple):
            files, fields = got
            b_item = _int_field(fields, "b_item", None)
            a, b = _one(files, "a"), None if b_item is not None else _one(files, "b")
        else:
            a, b_item = decode_file(got.a.model_dump(), "a"), got.b_item
            b = None if got.b is None else decode_file(got.b.model_dump(), "b")
        result = await call(service.compare_uploads, a, b, b_item)
        return {**result, "decision": "same" if result["same"] else "different"}

    @app.post("/v1/search", response_model=SearchResponse, tags=["similarity"], dependencies=[read],
              responses=_ERRORS, summary="The nearest index items of each file",
              openapi_extra=_body_doc(SearchRequest, {"files": "files", "k": "integer", "filter": "filter"}))
    async def search(request: Request):
        got = await _form_or_json(request, SearchRequest, settings.max_files)
        if isinstance(got, tuple):
            files, fields = got
            k = _int_field(fields, "k", 10)
            where = _json_object(fields["filter"][0], "filter") if fields.get("filter") else None
            files = files.get("files", [])
        else:
            files, k, where = _decoded(got.files, "files"), got.k, got.filter
        return await call(service.search_uploads, files, k, where)

    @app.post("/v1/index/items", response_model=AddResponse, status_code=201, tags=["index"],
              dependencies=[write], responses=_ERRORS, summary="Add files to the index (API key)",
              openapi_extra=_body_doc(AddRequest, {"files": "files", "labels": "strings", "metadata": "json"}))
    async def add_items(request: Request):
        got = await _form_or_json(request, AddRequest, settings.max_files)
        if isinstance(got, tuple):
            files, fields = got
            files = files.get("files", [])
            labels = fields.get("labels")
            metadata = [_json_object(m) for m in fields["metadata"]] if "metadata" in fields else None
        else:
            files = [decode_file(item.file.model_dump(), f"items[{i}].file") for i, item in enumerate(got.items)]
            labels = [item.label for item in got.items]
            metadata = [item.metadata for item in got.items]
        return await call(service.add_uploads, files, labels, metadata)

    item_id = Annotated[int, Path(ge=0, description="the item's id, from a search or an add")]

    @app.delete("/v1/index/items/{item_id}", response_model=RemoveResponse, tags=["index"], dependencies=[write],
                responses=_ERRORS, summary="Remove an item from the index (API key)")
    async def remove_item(item_id: item_id):
        return await call(service.remove_item, item_id)

    @app.get("/v1/index/items/{item_id}/thumbnail", tags=["index"], dependencies=[read],
             responses={200: {"content": {"image/png": {}}}, **_ERRORS}, response_class=Response,
             summary="A small PNG of an item's image")
    async def thumbnail(item_id: item_id):
        data = await call(service.thumbnail, item_id)
        return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=60"})

    @app.get("/v1/model", response_model=ModelCard, tags=["service"], dependencies=[read],
             summary="The model card: run, backbone, distance, threshold, metrics, index")
    async def model_card():
        return await call(service.model_card)

    @app.get("/report", tags=["service"], dependencies=[read], response_class=FileResponse,
             summary="The run's HTML report (`siamkit report`)", responses={404: {"model": ErrorBody}})
    async def run_report():
        return FileResponse(service.report_path(), media_type="text/html", headers={"Cache-Control": "no-cache"})

    @app.get("/health/live", tags=["service"], summary="The process answers")
    async def live():
        return {"status": "ok"}

    @app.get("/health/ready", response_model=Ready, tags=["service"], responses={503: {"model": Ready}},
             summary="Model (and index) loaded, batcher running")
    async def ready(request: Request):
        body = {"status": "ready" if app.state.ready else "starting", "model": service.run._model is not None,
                "index": None if service.index is None else True}
        return JSONResponse(body, 200 if app.state.ready else 503)

    @app.get("/metrics", tags=["service"], response_class=Response, summary="Prometheus metrics")
    async def prometheus():
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(str(STATIC / "index.html"), headers={"Cache-Control": "no-cache"})


def _int_field(fields, name, default):
    values = fields.get(name)
    if not values:
        return default
    try:
        return int(values[0])
    except ValueError:
        raise DataError(f"{name} must be a positive integer, got {values[0]!r}") from None


def _json_object(text, what="metadata"):
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise DataError(f"each {what} field must be a JSON object, got {text[:80]!r}")
    return value


_FORM_TYPES = {
    "file": {"type": "string", "format": "binary"},
    "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
    "integer": {"type": "integer", "minimum": 1},
    "id": {"type": "integer", "minimum": 0, "description": "an index item's id, in place of b"},
    "strings": {"type": "array", "items": {"type": "string"}, "description": "one per file"},
    "json": {"type": "array", "items": {"type": "string"}, "description": "one JSON object per file"},
    "filter": {"type": "string", "description": "a JSON object of metadata values, e.g. {\"label\": \"shoes\"}"},
}


def _body_doc(model, form):
    """The OpenAPI request body of a route that takes `model` as JSON, or `form` fields as multipart."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": {"type": "object", "required": [next(iter(form))],
                                                   "properties": {n: _FORM_TYPES[t] for n, t in form.items()}}},
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}},
            },
        }
    }


def _document_bodies(app):
    """Add the JSON request models, which routes read themselves, to the OpenAPI components."""
    from fastapi.openapi.utils import get_openapi

    def openapi():
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes,
                                 tags=app.openapi_tags)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (EmbedRequest, CompareRequest, SearchRequest, AddRequest):
                found = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(found.pop("$defs", {}))
                components[model.__name__] = found
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
