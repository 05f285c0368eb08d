"""The service's operations without HTTP: embed, compare, search, index writes, thumbnails, the model card.

Files arrive as `Upload(name, data)`. Their type is found from their first
bytes (`sniff`: images, WAV, `.npy` vectors, and UTF-8 text when the run
has a text tower), never from the client's name or header; images are
checked against `Limits.max_pixels` before they are decoded. Uploads are
decoded from memory by the run's own readers (`Run.read_inputs`), so a file
means the same here as on the command line; error messages name the
client's files.

Model calls go through a `Batcher` (see `batching`) when one is given, so
concurrent requests share one forward pass; without one they are made
directly, one at a time. Index writes are serialised and saved with the
index's own atomic `Index.save`: after a crash the folder holds the old
index or the new one.

The JSON-base64 form of a request body, `{"name": "a.png", "data": "<base64>"}`
per file, is decoded by `embed`, `compare` and `search`.

Example:

>>> service = SimilarityService(Run("runs/digits"), index=load("digits.index"))   # doctest: +SKIP
>>> service.compare_uploads(Upload("a.png", a_bytes), Upload("b.png", b_bytes))["same"]   # doctest: +SKIP
True
"""

import base64
import binascii
import concurrent.futures
import dataclasses
import io
import os
import threading

import numpy as np

from ..datasets.memory import MemoryFile
from ..errors import ConfigError, DataError, SiamkitError
from ..index.qdrant import is_qdrant
from ..runs import REPORT_FILE

# Answered 400 with the message: bad input, or a file gone missing or unreadable (the message names it).
CLIENT_ERRORS = (SiamkitError, FileNotFoundError, PermissionError)
UPLOADS = "uploads"  # sub-folder of the index directory that keeps files added through the service


# One uploaded file: the client's name (shown in messages only) and its bytes, decoded in memory.
Upload = MemoryFile


class TooLarge(DataError):
    """A request over a size limit (413)."""


class NotFound(DataError):
    """An index item that does not exist, or has no image (404)."""


class Timeout(SiamkitError):
    """The model did not answer within the request timeout (504)."""


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one request may ask.

    Args:
        max_files: files per request.
        max_pixels: pixels of one decoded image (decompression bombs).
        max_k: results per query; a larger `k` is capped, not refused.
        timeout_s: seconds a request waits for the model.
        thumbnail_px: the longer side of a thumbnail.
    """

    max_files: int = 64
    max_pixels: int = 25_000_000
    max_k: int = 100
    timeout_s: float = 30.0
    thumbnail_px: int = 160


# First bytes -> the extension the readers know the type by.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", 0, ".png"),
    (b"\xff\xd8\xff", 0, ".jpg"),
    (b"GIF87a", 0, ".gif"),
    (b"GIF89a", 0, ".gif"),
    (b"II*\x00", 0, ".tif"),
    (b"MM\x00*", 0, ".tif"),
    (b"BM", 0, ".bmp"),
    (b"WEBP", 8, ".webp"),
    (b"WAVE", 8, ".wav"),
    (b"\x93NUMPY", 0, ".npy"),
)


def sniff(data, text=False):
    """The file extension that `data` is, by its first bytes (`.png`, `.jpg`, ..., `.wav`, `.npy`), or None.

    With `text=True` (a run with a text tower), data of none of those types
    that decodes as UTF-8 without control characters is `.txt`.
    """
    for magic, offset, ext in _MAGIC:
        if data[offset : offset + len(magic)] == magic and (offset == 0 or data[:4] == b"RIFF"):
            return ext
    if text and _is_text(data):
        return ".txt"
    return None


def _is_text(data):
    try:
        decoded = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    return not any(ord(ch) < 32 and ch not in "\t\n\r" for ch in decoded)


_READABLE = {"image": "an image", "audio": "a WAV file", "text": "UTF-8 text", "features": "a .npy vector"}


def _readable(modalities):
    """What files of `modalities` are, for a message: "an image or a WAV file"."""
    return " or ".join(_READABLE[m] for m in ("image", "audio", "text", "features") if m in modalities)


def _kinds():
    from ..index.inputs import FILE_TYPES

    return FILE_TYPES


class SimilarityService:
    """The service's operations on decoded requests.

    Args:
        run: the `siamkit.runs.Run` whose model embeds and compares.
        index: an index built with that run (any `siamkit.index.VectorIndex`:
            a folder index or a Qdrant collection), for search; None leaves
            search unavailable.
        threshold: decision threshold in the pair head's units; default: the
            run's calibrated one (from `siamkit evaluate`), if any.
        method: which calibrated threshold (`accuracy`, `eer`, `far`).
        invert: read images as dark ink on white.
        index_dir: where `index` was opened from (a folder or a Qdrant URI);
            index writes are saved there (without it the index is read-only).
            Files added through the service are kept in its `uploads`
            sub-folder for a folder index; a Qdrant index, which replicas on
            other machines share, keeps no files (those items get no
            thumbnail).
        limits: a `Limits`.
        batcher: a `Batcher` over `embed_now`, or None to call the model directly.

    The decision (`siamkit.evaluation.calibration.Decision`) is made once,
    here: a calibration written later takes effect when the service restarts.
    Without one, compare raises a `DataError` that says how to get one and
    search results carry no match.
    """

    def __init__(self, run, index=None, threshold=None, method=None, invert=None, index_dir=None, limits=None,
                 batcher=None):
        from ..evaluation.calibration import Decision

        self.fingerprint = run.fingerprint()
        if index is not None:
            index.check_model(self.fingerprint)
        self.run, self.index, self.invert = run, index, invert
        self.index_dir = None if index_dir is None or is_qdrant(index_dir) else os.path.abspath(index_dir)
        self.index_location = index_dir if is_qdrant(index_dir) else self.index_dir
        self.uploads = None if self.index_dir is None else os.path.join(self.index_dir, UPLOADS)
        self.limits = limits or Limits()
        self.decision = Decision.for_run(run, threshold, method)
        self.batcher = batcher
        self._lock = threading.Lock()  # model calls
        self._index_lock = threading.Lock()  # index reads against writes

    # -- descriptions --------------------------------------------------------

    @property
    def run_name(self):
        return os.path.basename(os.path.abspath(self.run.path))  # not the server's folder layout

    def towers(self):
        """`{"a": "image", "b": "audio"}`: which file type each tower reads."""
        return {side: self.run.modality(side) for side in (("a", "b") if self.run.is_two_tower else ("a",))}

    def model_card(self):
        """What a user needs to trust the answers: the model, its threshold, its metrics, the index."""
        config, run = self.run.config, self.run
        calibration = run.calibration or {}
        metrics = run.read_json("metrics.json") or {}
        keys = ("encoder", "embedding_dim", "head", "distance", "loss", "image_size", "channels", "sample_rate",
                "epochs", "keras_backend")
        return {
            "run": self.run_name,
            "backbone": config.get("encoder"),
            "distance": run.distance,
            "higher_is_similar": run.higher_is_similar,
            "two_tower": run.is_two_tower,
            "towers": self.towers(),
            "input_shape": list(run.input_shape),
            "input_shape_b": config.get("input_shape_b"),
            "config": {k: config[k] for k in keys if config.get(k) is not None},
            "threshold": self.decision.to_json(),
            "calibration": {k: calibration[k] for k in ("chosen_on", "protocol", "default", "thresholds")
                            if k in calibration} or None,
            "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
            "fingerprint": self.fingerprint,
            "report": "/report" if os.path.isfile(run.file(REPORT_FILE)) else None,
            "index": None if self.index is None else {
                "size": len(self.index), "distance": self.index.distance, "backend": self.index.backend_name,
                "writable": self.index_location is not None,
            },
        }

    def report_path(self):
        """The run's `report.html` (from `siamkit report`), else `NotFound`."""
        path = self.run.file(REPORT_FILE)
        if not os.path.isfile(path):
            raise NotFound(f"the run has no {REPORT_FILE}; write it with `siamkit report RUN_DIR`")
        return path

    def public(self, message):
        """`message` with the server's folders replaced by their names."""
        for folder in (self.run.path, self.index_dir):
            if folder:
                for form in (os.path.abspath(folder), os.fspath(folder)):
                    message = message.replace(form, os.path.basename(form.rstrip(os.sep)))
        return message

    # -- model calls ---------------------------------------------------------

    def embed_now(self, x, modality="a"):
        """One model call, serialised with the others."""
        with self._lock:
            return self.run.embed(x, modality)

    def _embed_all(self, read):
        """Embeddings of the `[(x, modality), ...]` that `read()` makes, submitted together.

        While `read()` decodes the files, the batcher knows this request is on
        its way and holds the batch it is gathering open for it.
        """
        if self.batcher is None:
            return [self.embed_now(x, m) for x, m in read()]
        with self.batcher.expecting():
            futures = [self.batcher.submit(x, m) for x, m in read()]
        try:
            return [f.result(timeout=self.limits.timeout_s) for f in futures]
        except concurrent.futures.TimeoutError:
            raise Timeout(f"the model did not answer within {self.limits.timeout_s:g} s; retry later") from None

    # -- reading uploads -----------------------------------------------------

    def _check(self, uploads, what="files"):
        if not uploads:
            raise DataError(f"{what} must be a non-empty list of files")
        if len(uploads) > self.limits.max_files:
            raise TooLarge(f"{len(uploads)} files in one request; send at most {self.limits.max_files}")
        exts = []
        reads = set(self.towers().values())
        for upload in uploads:
            ext = sniff(upload.data, text="text" in reads)
            if ext is None:
                raise DataError(f"{upload.name!r}: unsupported file type (its content is not {_readable(reads)})")
            if _kinds()[ext] == "image":
                self._check_pixels(upload)
            exts.append(ext)
        return exts

    def _check_pixels(self, upload):
        from PIL import Image

        try:
            with Image.open(io.BytesIO(upload.data)) as img:
                w, h = img.size
        except Exception:  # noqa: BLE001  (the reader reports what is wrong with it)
            return
        if w * h > self.limits.max_pixels:
            raise TooLarge(
                f"{upload.name!r}: {w}x{h} = {w * h:,} pixels is over the limit of {self.limits.max_pixels:,}; "
                "send a smaller image"
            )

    def _read(self, uploads, exts, modality=None):
        """Model inputs of checked uploads of one type (`exts` from `_check`): `(x, modality)`.

        `modality` forces the tower. Files are decoded from memory; nothing is written to disk.
        """
        kind = _kinds()[exts[0]]
        if modality is None:
            modality = self.run.side_for(kind)
        elif self.towers()[modality] != kind:
            raise DataError(f"{uploads[0].name!r}: tower {modality} of this run reads {self.towers()[modality]} files")
        try:
            return self.run.read_inputs(list(uploads), modality, self.invert), modality
        except CLIENT_ERRORS as err:
            raise DataError(str(err)) from None

    def _embed_uploads(self, uploads, exts):
        """Embeddings of checked files of any readable types, in order."""
        by_kind = {}
        for i, ext in enumerate(exts):
            by_kind.setdefault(_kinds()[ext], []).append(i)
        found = self._embed_all(
            lambda: [self._read([uploads[i] for i in rows], [exts[i] for i in rows]) for rows in by_kind.values()]
        )
        z = None
        for rows, zs in zip(by_kind.values(), found):
            if z is None:
                z = np.empty((len(uploads), zs.shape[1]), np.float32)
            z[rows] = zs
        return z

    # -- operations ----------------------------------------------------------

    def embed_uploads(self, uploads):
        z = self._embed_uploads(uploads, self._check(uploads))
        return {"dim": int(z.shape[1]), "embeddings": z.tolist()}

    def compare_uploads(self, a, b=None, b_item=None):
        """What `siamkit compare` prints for two files (a two-tower run reads `b` with its second tower).

        `b_item`, an index item's id, stands for `b`: the item's own file.
        """
        from ..evaluation.compare import compare_embeddings

        if self.decision.threshold is None:
            self.decision([])  # raises the error that says how to get a threshold, before any work
        if (b is None) == (b_item is None):
            raise DataError("send the second file as b, or an index item's id as b_item (one of them)")
        if b is None:
            with open(self._item_path(b_item, "a file"), "rb") as f:
                b = Upload(f"item {b_item}", f.read())
        checked = self._check([a]), self._check([b])
        z_a, z_b = self._embed_all(lambda: [
            self._read([a], checked[0], "a"), self._read([b], checked[1], "b" if self.run.is_two_tower else "a")
        ])
        with self._lock:
            return compare_embeddings(self.run, z_a, z_b, self.decision)

    def search_uploads(self, uploads, k=10, filter=None):
        """The `k` nearest index items of each file: id, label, distance, score, match, thumbnail URL.

        `filter` keeps only items whose metadata passes it (`{"label": "shoes"}`, see
        `siamkit.index.filters`).
        """
        from ..index.matching import search_embeddings

        index = self._need_index()
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise DataError(f"k must be a positive integer, got {k!r}")
        z = self._embed_uploads(uploads, self._check(uploads))
        with self._index_lock:
            k = min(k, self.limits.max_k, max(len(index), 1))  # more than the index holds would only pad
            with self._lock:
                found = search_embeddings(index, self.run, z, [u.name for u in uploads], k, self.decision, filter)
        for query in found:
            query["results"] = [self._public_result(r) for r in query["results"]]
        return {"distance": index.distance, "k": k, "queries": found}

    def _public_result(self, result):
        path = result.pop("path", None)
        result.setdefault("label", None)
        has_image = isinstance(path, str) and _kinds().get(os.path.splitext(path)[1].lower()) == "image"
        result["thumbnail"] = f"/v1/index/items/{result['id']}/thumbnail" if has_image else None
        return result

    def _need_index(self, write=False):
        if self.index is None:
            raise ConfigError("this service has no index; start it with `siamkit serve RUN_DIR --index INDEX_DIR`")
        if write and self.index_location is None:
            raise ConfigError("this service's index is read-only (it was not loaded from a folder)")
        return self.index

    def add_uploads(self, uploads, labels=None, metadata=None):
        """Add files to the index and save it; returns `{"ids": [...], "index_size": n}`.

        Each file is kept under `INDEX_DIR/uploads/ID.EXT` (for thumbnails), and
        gets `label` and the JSON `metadata` (string and number values) given
        for it.
        """
        index = self._need_index(write=True)
        n = len(uploads)
        labels = [None] * n if labels is None else list(labels)
        metadata = [{} for _ in range(n)] if metadata is None else [dict(m or {}) for m in metadata]
        if len(labels) != n or len(metadata) != n:
            raise DataError(f"got {n} files, {len(labels)} labels and {len(metadata)} metadata records; "
                            "send one label and one record per file (or none)")
        for record in metadata:
            if {"path", "id"} & set(record):
                raise DataError(f"metadata keys 'id' and 'path' are the service's; rename them in {record!r}")
        exts = self._check(uploads)
        z = self._embed_uploads(uploads, exts)
        if self.uploads is not None:
            os.makedirs(self.uploads, exist_ok=True)
        with self._index_lock:
            ids = index.new_ids(n)
            paths = [None if self.uploads is None else os.path.join(self.uploads, f"{i}{ext}")
                     for i, ext in zip(ids, exts)]
            records = [{**m, **({"path": p} if p else {}), **({"label": lab} if lab is not None else {})}
                       for m, p, lab in zip(metadata, paths, labels)]
            index.add(z, ids=ids, metadata=records, fingerprint=self.fingerprint)
            try:
                for path, upload in zip(paths, uploads):
                    if path is not None:
                        _write_atomic(path, upload.data)
                index.save(self.index_location)
            except BaseException:
                index.remove(ids)
                for path in paths:
                    if path is not None:
                        _remove_quietly(path)
                raise
            return {"ids": ids.tolist(), "index_size": len(index)}

    def remove_item(self, item_id):
        """Remove one item from the index and save it; returns `{"id", "index_size"}`."""
        index = self._need_index(write=True)
        with self._index_lock:
            if not index.contains([item_id])[0]:
                raise NotFound(f"no item {item_id} in the index")
            z, meta = index.embeddings([item_id]), index.metadata([item_id])
            index.remove([item_id])
            try:
                index.save(self.index_location)
            except BaseException:
                index.add(z, ids=[item_id], metadata=meta)
                raise
            path = meta[0].get("path")
            if isinstance(path, str) and self.uploads is not None and os.path.dirname(path) == self.uploads:
                _remove_quietly(path)
            return {"id": item_id, "index_size": len(index)}

    def _item_path(self, item_id, what):
        """The server file of an index item's image: found by id, so no path from a request reaches the disk."""
        index = self._need_index()
        with self._index_lock:
            known = bool(index.contains([item_id])[0])
            path = index.metadata([item_id])[0].get("path") if known else None
        if not known:
            raise NotFound(f"no item {item_id} in the index")
        if not isinstance(path, str) or _kinds().get(os.path.splitext(path)[1].lower()) != "image":
            raise NotFound(f"item {item_id} has no image ({what})")
        return path

    def thumbnail(self, item_id):
        """PNG bytes of an index item's image, at most `Limits.thumbnail_px` on a side."""
        from PIL import Image, ImageOps

        path = self._item_path(item_id, "an image to show")
        try:
            with Image.open(path) as img:
                img = ImageOps.exif_transpose(img)
                img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
                side = self.limits.thumbnail_px
                scale = side / max(img.size)
                size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
                img = img.resize(size, Image.NEAREST if scale >= 2 else Image.LANCZOS)  # small digits stay crisp
                out = io.BytesIO()
                img.save(out, "PNG")
        except (OSError, ValueError):
            raise NotFound(f"item {item_id}'s image cannot be read on the server") from None
        return out.getvalue()

    # -- the JSON-base64 form ------------------------------------------------

    def embed(self, body):
        return self.embed_uploads(_files(body, "files"))

    def compare(self, body):
        return self.compare_uploads(*[decode_file(_field(body, side), side) for side in ("a", "b")])

    def search(self, body):
        self._need_index()
        return self.search_uploads(_files(body, "files"), body.get("k", 10), body.get("filter"))


def _write_atomic(path, data):
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _remove_quietly(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _field(body, key):
    if key not in body:
        raise DataError(f"the request body lacks {key!r}")
    return body[key]


def decode_file(item, where):
    """`Upload` of one `{"name", "data"}` item of the JSON form."""
    if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not isinstance(item.get("data"), str):
        raise DataError(f"{where} must be an object {{\"name\": \"x.png\", \"data\": \"<base64>\"}}, got {_short(item)}")
    try:
        data = base64.b64decode(item["data"], validate=True)
    except (binascii.Error, ValueError):
        raise DataError(f"{where} ({item['name']!r}): data is not valid base64") from None
    return Upload(item["name"], data)



def _files(body, key):
    items = _field(body, key)
    if not isinstance(items, list) or not items:
        raise DataError(f"{key} must be a non-empty list of files, got {_short(items)}")
    return [decode_file(item, f"{key}[{i}]") for i, item in enumerate(items)]


def _short(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
