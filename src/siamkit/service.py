"""A small HTTP service over a trained run (and optionally an index): embed, compare, search.

Requests and answers are JSON. Files travel base64-encoded with their name,
whose extension says how to read them (an image type, or `.wav` for a
two-tower run's audio tower): `{"name": "query.png", "data": "<base64>"}`.

| method and path | body | answer |
| --- | --- | --- |
| `GET /health` | | the run, its distance and input shapes, the index size |
| `POST /embed` | `{"files": [file, ...]}` | `{"embeddings": [[...], ...], "dim": D}` |
| `POST /compare` | `{"a": file, "b": file}` | what `siamkit compare` prints: score, distance, similarity, threshold, decision |
| `POST /search` | `{"files": [file, ...], "k": 10}` | per query, the ranked results of `siamkit search --json` |

Uploads are written to a private temporary folder under generated names and
read by the same readers as the CLI (the run's image policy, the
decompression-bomb limit), so a file means the same here as on the command
line. A request larger than `max_bytes` is refused (413) and its body
discarded unparsed; input a user can fix answers 400 with
`{"error": message}`, an unknown path 404. Model calls are serialised by a lock, so the threaded server answers
`/health` while a batch is being embedded.

Example:

>>> service = SimilarityService(Run("runs/digits"), index=load("digits.index"))   # doctest: +SKIP
>>> server = make_server(service, "127.0.0.1", 8000)                              # doctest: +SKIP
>>> server.serve_forever()                                                        # doctest: +SKIP
"""

import base64
import binascii
import contextlib
import http.server
import json
import logging
import os
import tempfile
import threading

from ._io import json_default
from .errors import ConfigError, DataError, SiamkitError

MAX_BYTES = 32 * 2**20
# Answered 400 with the message: bad input, or a file gone missing or unreadable (the message names it).
_CLIENT_ERRORS = (SiamkitError, FileNotFoundError, PermissionError)
MAX_FILES = 256
log = logging.getLogger(__name__)


class SimilarityService:
    """The service's operations on decoded request bodies, without HTTP.

    Args:
        run: the `siamkit.runs.Run` whose model embeds and compares.
        index: a `siamkit.index.Index` built with that run, for `search`; None
            leaves `/search` unavailable.
        threshold: decision threshold in the pair head's units; default: the
            run's calibrated one (from `siamkit evaluate`), if any.
        method: which calibrated threshold (`accuracy`, `eer`, `far`).
        invert: read images as dark ink on white.

    The decision (`siamkit.evaluation.calibration.Decision`) is made once,
    here: a calibration written later takes effect when the service restarts.
    Without one, `/compare` answers 400 and `/search` results carry no match.
    """

    def __init__(self, run, index=None, threshold=None, method=None, invert=None):
        from .evaluation.calibration import Decision

        if index is not None:
            index.check_model(run.fingerprint())
        self.run, self.index, self.invert = run, index, invert
        self.decision = Decision.for_run(run, threshold, method)
        self._lock = threading.Lock()

    def health(self):
        run = self.run
        return {
            "status": "ok",
            "run": os.path.basename(os.path.abspath(run.path)),  # not the server's folder layout
            "distance": run.distance,
            "input_shape": list(run.input_shape),
            "input_shape_b": run.config.get("input_shape_b"),
            "index_size": None if self.index is None else len(self.index),
            "threshold": self.decision.to_json(),
        }

    def embed(self, body):
        from .index.inputs import embed_files

        with _uploads(_files(body, "files")) as (paths, _):
            with self._lock:
                z = embed_files(self.run, paths, invert=self.invert, progress=False)
        return {"dim": int(z.shape[1]), "embeddings": z.tolist()}

    def compare(self, body):
        from .evaluation.compare import compare_files

        files = [_file(_field(body, side), side) for side in ("a", "b")]
        with _uploads(files) as (paths, _):
            with self._lock:
                return compare_files(self.run, *paths, invert=self.invert, decision=self.decision)

    def search(self, body):
        from .index.matching import search_files

        if self.index is None:
            raise ConfigError("this service has no index; start it with `siamkit serve RUN_DIR --index INDEX_DIR`")
        k = body.get("k", 10)
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise DataError(f"k must be a positive integer, got {k!r}")
        k = min(k, max(len(self.index), 1))  # more than the index holds would only pad, at k x queries memory
        with _uploads(_files(body, "files")) as (paths, names):
            with self._lock:
                found = search_files(self.index, self.run, paths, k, self.decision, invert=self.invert, progress=False)
        for query, name in zip(found, names):
            query["query"] = name
        return {"distance": self.index.distance, "queries": found}


def _field(body, key):
    if key not in body:
        raise DataError(f"the request body lacks {key!r}")
    return body[key]


def _file(item, where):
    """`(name, bytes)` of one `{"name", "data"}` item."""
    if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not isinstance(item.get("data"), str):
        raise DataError(f"{where} must be an object {{\"name\": \"x.png\", \"data\": \"<base64>\"}}, got {_short(item)}")
    try:
        data = base64.b64decode(item["data"], validate=True)
    except (binascii.Error, ValueError):
        raise DataError(f"{where} ({item['name']!r}): data is not valid base64") from None
    return item["name"], data


def _files(body, key):
    items = _field(body, key)
    if not isinstance(items, list) or not items:
        raise DataError(f"{key} must be a non-empty list of files, got {_short(items)}")
    if len(items) > MAX_FILES:
        raise DataError(f"{len(items)} files in one request; send at most {MAX_FILES}")
    return [_file(item, f"{key}[{i}]") for i, item in enumerate(items)]


def _short(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


@contextlib.contextmanager
def _uploads(files):
    """Write `(name, bytes)` files into a private temporary folder; yields `(paths, names)`.

    Each file is stored under a generated name with its own extension, so a
    client's name never becomes a path here; errors name the client's files.
    """
    from .index.inputs import FILE_TYPES

    names = [name for name, _ in files]
    for name in names:
        if os.path.splitext(name)[1].lower() not in FILE_TYPES:
            raise DataError(f"{name!r}: unsupported file type; readable types: {', '.join(sorted(FILE_TYPES))}")
    with tempfile.TemporaryDirectory(prefix="siamkit-serve-") as folder:
        paths = [os.path.join(folder, f"{i}{os.path.splitext(name)[1].lower()}") for i, name in enumerate(names)]
        for path, (_, data) in zip(paths, files):
            with open(path, "wb") as f:
                f.write(data)
        try:
            yield paths, names
        except _CLIENT_ERRORS as err:
            message = str(err)
            for path, name in zip(paths, names):
                message = message.replace(path, name)
            if message == str(err):
                raise
            raise DataError(message) from None


ROUTES = {("GET", "/health"): "health", ("POST", "/embed"): "embed", ("POST", "/compare"): "compare",
          ("POST", "/search"): "search"}


class _Handler(http.server.BaseHTTPRequestHandler):
    service = None  # set by `make_server`
    max_bytes = MAX_BYTES
    server_version = "siamkit"
    timeout = 60  # seconds a connection may stall: a slow or silent client does not hold its thread forever

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")

    def _route(self, method):
        name = ROUTES.get((method, self.path.split("?")[0].rstrip("/") or "/"))
        if name is None:
            known = ", ".join(f"{m} {p}" for m, p in ROUTES)
            return self._send(404, {"error": f"no {method} {self.path}; this service answers {known}"})
        operation = getattr(self.service, name)
        try:
            payload = operation() if method == "GET" else operation(self._body())
        except _TooLarge as err:
            return self._send(413, {"error": str(err)})
        except _CLIENT_ERRORS as err:
            run_dir = os.path.abspath(self.service.run.path)
            return self._send(400, {"error": str(err).replace(run_dir, os.path.basename(run_dir))})
        except Exception:  # a bug, not the client's input: log it, answer without internals
            log.exception("siamkit serve: %s %s failed", method, self.path)
            return self._send(500, {"error": "internal error; see the server's log"})
        self._send(200, payload)

    def _body(self):
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise DataError("the request needs a Content-Length header") from None
        if length < 0:
            raise DataError(f"Content-Length must not be negative, got {length}")
        if length > self.max_bytes:
            self._discard(length)  # a client that is still sending would not see the answer otherwise
            raise _TooLarge(f"the request body has {length} bytes; the limit is {self.max_bytes}")
        try:
            body = json.loads(self.rfile.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:  # RecursionError: absurd nesting
            raise DataError(f"the request body is not JSON: {err}") from None
        if not isinstance(body, dict):
            raise DataError(f"the request body must be a JSON object, got {_short(body)}")
        return body

    def _discard(self, length, chunk=2**20):
        while length > 0:
            got = len(self.rfile.read(min(chunk, length)))
            if not got:
                break
            length -= got

    def _send(self, status, payload):
        data = json.dumps(payload, default=json_default).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        log.info("%s - %s", self.address_string(), format % args)


class _TooLarge(Exception):
    pass


def make_server(service, host="127.0.0.1", port=8000, max_bytes=MAX_BYTES):
    """A threaded HTTP server for `service`; call `serve_forever()` on it (port 0: any free port).

    Args:
        service: a `SimilarityService`.
        host, port: where to listen; the default host takes local clients only.
        max_bytes: the largest request body accepted.
    """
    if max_bytes < 1:
        raise ConfigError(f"max_bytes must be positive, got {max_bytes}")
    handler = type("Handler", (_Handler,), {"service": service, "max_bytes": int(max_bytes)})
    return http.server.ThreadingHTTPServer((host, port), handler)
