"""The similarity service: embed, compare and search over HTTP, with a web page.

- `SimilarityService` (`core`): the operations on uploaded files, without
  HTTP: embed, compare, search, index writes, thumbnails, the model card.
- `Batcher` (`batching`): concurrent requests' inputs embedded in one model call.
- `create_app(run, index, settings)` (`app`): the FastAPI app over them, with
  `Settings`; needs the `serve` extra (`pip install "siamkit[serve]"`).
  `siamkit serve RUN_DIR --index INDEX_DIR` runs it on uvicorn.

Example:

>>> import uvicorn                                                    # doctest: +SKIP
>>> from siamkit.service import Settings, create_app                  # doctest: +SKIP
>>> app = create_app("runs/digits", "digits.index", Settings())       # doctest: +SKIP
>>> uvicorn.run(app, host="127.0.0.1", port=8000)                     # doctest: +SKIP
"""

from .batching import Batcher, Busy
from .core import Limits, SimilarityService, Upload, sniff

__all__ = ["Batcher", "Busy", "Limits", "Settings", "SimilarityService", "Upload", "create_app", "sniff"]


def create_app(run, index=None, settings=None):
    """The FastAPI app; see `siamkit.service.app.create_app`."""
    from .app import create_app

    return create_app(run, index, settings)


def __getattr__(name):
    if name == "Settings":  # needs pydantic-settings, from the `serve` extra
        from .app import Settings

        return Settings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
