"""Decode image files into arrays under one explicit size and channel policy.

Reads PNG, JPEG, BMP, GIF (first frame), WebP and TIFF in any PIL mode
(grayscale, RGB, RGBA, palette, 16-bit), applies EXIF orientation, composites
transparency onto white, and returns uint8 `(h, w, c)` arrays. Every failure
is a `BadFileError` (a `DataError`) that names the file and the reason.

Files are read in two passes: `scan_images` reads headers only (size, mode,
PNG checksums) and resolves the policy; `decode_images` decodes. Both accept
`skip_bad`, which leaves bad files out and reports `(path, reason)`.

Example:

>>> batch = read_images(paths, image_size=64, channels=1)   # doctest: +SKIP
>>> batch.images.shape, batch.bad
((n, 64, 64, 1), [])
"""

import contextlib
import dataclasses
import os
import struct
import warnings
import zlib

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ConfigError, DataError
from ._progress import progress as progress_bar
from .memory import name_of, open_binary

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
CHANNELS = (1, 3, 4)
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
_EXIF_ORIENTATION = 0x0112
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error)


class BadFileError(DataError):
    """A file that cannot be used. `path` and `reason` feed skip reports."""

    def __init__(self, path, reason):
        super().__init__(f"{name_of(path)}: {reason}")
        self.path = name_of(path)
        self.reason = reason


def parse_image_size(value):
    """Normalise an image size: None, `N`, `"N"`, `"HxW"` or `(h, w)` -> `(h, w)` or None."""
    if value is None:
        return None
    try:
        if isinstance(value, str):
            parts = value.lower().split("x")
            size = tuple(int(p) for p in parts) if len(parts) == 2 else (int(value),) * 2
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            size = (int(value),) * 2
        else:
            size = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        size = ()
    if len(size) != 2 or min(size) < 1:
        raise ConfigError(f"invalid image_size {value!r}; give a positive size N or HxW, e.g. 105 or 64x48")
    return size


def check_channels(value):
    """Return `value` if it is None (auto) or one of `CHANNELS`, else raise `ConfigError`."""
    if value is None:
        return None
    if isinstance(value, (str, float)) and str(value).isdigit():
        value = int(value)
    if value not in CHANNELS:
        raise ConfigError(f"invalid channels {value!r}; use 1 (grayscale), 3 (RGB) or 4 (RGBA)")
    return int(value)


@contextlib.contextmanager
def _reading(path, max_pixels):
    """Turn every way reading `path` can fail into a `BadFileError`."""
    try:
        with warnings.catch_warnings():
            # The pixel limit is checked by `_check_pixels`; PIL's own warning would only repeat it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    except BadFileError:
        raise
    except Image.DecompressionBombError as err:
        raise BadFileError(
            path,
            f"too many pixels, a possible decompression bomb ({err}); if it is genuine, raise "
            "PIL.Image.MAX_IMAGE_PIXELS",
        ) from None
    except UnidentifiedImageError:
        raise BadFileError(
            path, "not an image PIL can read (is it another kind of file renamed with an image extension?)"
        ) from None
    except FileNotFoundError:
        raise BadFileError(path, "does not exist") from None
    except PermissionError:
        raise BadFileError(path, "cannot be read: permission denied (fix the file's permissions)") from None
    except IsADirectoryError:
        raise BadFileError(path, "is a directory, not an image file") from None
    except _DECODE_ERRORS as err:
        raise BadFileError(path, f"corrupt or truncated image ({type(err).__name__}: {err})") from None


def _open(path, f, max_pixels):
    if f.seek(0, os.SEEK_END) == 0:
        raise BadFileError(path, "is empty (0 bytes)")
    f.seek(0)
    img = Image.open(f)
    limit = Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    if limit is not None and img.width * img.height > limit:
        raise BadFileError(
            path,
            f"{img.width}x{img.height} = {img.width * img.height:,} pixels is over the limit of {limit:,} "
            "(a possible decompression bomb); raise max_pixels if the image is genuine",
        )
    return img


def _is_gray(img):
    if img.mode in _GRAY_MODES:
        return True
    if img.mode in ("P", "PA"):
        rgb = np.asarray(img.getpalette("RGB") or [0, 0, 0]).reshape(-1, 3)
        return bool(np.all(rgb == rgb[:, :1]))
    return False


@dataclasses.dataclass(frozen=True)
class Header:
    """What a file's header says: size after EXIF orientation, mode, format."""

    path: str
    height: int
    width: int
    mode: str
    format: str
    gray: bool


def read_header(path, max_pixels=None):
    """Read and check one file's header without decoding its pixels.

    Checks that the file exists, is readable, non-empty and an image, that
    it is within the pixel limit, and (for PNG) that its chunk checksums hold.

    Args:
        path: the image file.
        max_pixels: largest width x height accepted (default:
            `PIL.Image.MAX_IMAGE_PIXELS`, about 89 megapixels).

    Returns:
        A `Header`.
    """
    with _reading(path, max_pixels), open_binary(path) as f:
        img = _open(path, f, max_pixels)
        # PNG keeps EXIF after the pixels; reading it would decode the image, so its
        # (rare) rotation is applied at decode time only.
        orientation = 1 if img.format == "PNG" else img.getexif().get(_EXIF_ORIENTATION, 1)
        w, h = (img.height, img.width) if orientation in (5, 6, 7, 8) else img.size
        mode, fmt = img.mode, img.format
        img.verify()
        if mode in ("P", "PA"):  # a palette is read by loading, which `verify` must precede
            f.seek(0)
            with Image.open(f) as again:
                gray = _is_gray(again)
        else:
            gray = mode in _GRAY_MODES
    return Header(name_of(path), h, w, mode, fmt, gray)


def _to_8bit(img):
    arr = np.asarray(img, dtype="float64")
    arr = np.clip(arr, 0, 255) if img.mode == "F" else np.clip(arr, 0, 65535) / 257.0
    return Image.fromarray(np.round(arr).astype("uint8"), "L")


def _has_alpha(img):
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info


def _convert(img, channels):
    if img.mode.startswith("I") or img.mode == "F":
        img = _to_8bit(img)
    if channels is None:
        channels = 1 if _is_gray(img) else 3
    if channels == 4:
        return img.convert("RGBA")
    if _has_alpha(img):
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img.convert("RGBA"))
    return img.convert("L" if channels == 1 else "RGB")


def decode(path, image_size=None, channels=None, max_pixels=None):
    """Decode one image file to a uint8 `(h, w, c)` array.

    Args:
        path: the image file.
        image_size: `(h, w)` (or anything `parse_image_size` takes) to resize
            to with bilinear filtering; None keeps the file's size.
        channels: 1, 3 or 4; None keeps grayscale as 1 and colour as 3.
            Transparency is composited onto white unless `channels=4`.
        max_pixels: as for `read_header`.

    Example:

    >>> decode("cat.png", image_size=64, channels=3).shape   # doctest: +SKIP
    (64, 64, 3)
    """
    size = parse_image_size(image_size)
    with _reading(path, max_pixels), open_binary(path) as f:
        img = _open(path, f, max_pixels)
        img.seek(0)  # first frame of an animation
        img = _convert(ImageOps.exif_transpose(img), channels)
        if size is not None and (img.height, img.width) != size:
            img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
        arr = np.asarray(img, dtype="uint8")
    return arr if arr.ndim == 3 else arr[..., None]


@dataclasses.dataclass
class DecodedImages:
    """Result of a pass over files.

    Attributes:
        images: uint8 `(k, h, w, c)` for the kept files (None if not kept).
        kept: int indices into the input paths of the files that are good.
        bad: `(path, reason)` of every file left out.
        image_size: the resolved `(h, w)`.
        channels: the resolved channel count.
        fixed_size: True when `image_size` was given (images are resized to it).
    """

    images: object
    kept: np.ndarray
    bad: list
    image_size: tuple
    channels: int
    fixed_size: bool = False


def _each(paths, index, fn, skip_bad, bad, desc, enabled):
    """Apply `fn` to `paths[i]` for `i` in `index`; yield `(i, result)` of good files."""
    for i in progress_bar(index, desc, enabled=enabled, total=len(index)):
        try:
            yield i, fn(paths[i])
        except BadFileError as err:
            if not skip_bad:
                raise
            bad.append((err.path, err.reason))


def scan_images(paths, image_size=None, channels=None, skip_bad=False, max_pixels=None, progress=True):
    """Read every header and resolve the size and channel policy.

    Args:
        paths: image files.
        image_size: target `(h, w)`/`N`/`"HxW"`; None requires every image
            to have the same size.
        channels: 1, 3, 4, or None for 1 when every image is grayscale, else 3.
        skip_bad: leave bad files out (listed in `bad`) instead of raising.
        max_pixels: as for `read_header`.
        progress: show a progress bar on a terminal.

    Returns:
        A `DecodedImages` with `images=None`.
    """
    size, channels = parse_image_size(image_size), check_channels(channels)
    fixed = size is not None
    bad = []
    headers = dict(
        _each(
            paths, range(len(paths)), lambda p: read_header(p, max_pixels), skip_bad, bad, "checking images", progress
        )
    )
    if not headers:
        raise DataError(f"none of the {len(paths)} image files can be read; the first: {bad[0][0]}: {bad[0][1]}")
    kept = np.fromiter(headers, dtype="int64", count=len(headers))
    if size is None:
        first = headers[int(kept[0])]
        for h in headers.values():
            if (h.height, h.width) != (first.height, first.width):
                _mixed_sizes(first.path, (first.height, first.width), h.path, (h.height, h.width))
        size = (first.height, first.width)
    if channels is None:
        channels = 1 if all(h.gray for h in headers.values()) else 3
    return DecodedImages(None, kept, bad, size, channels, fixed)


def _mixed_sizes(path_a, size_a, path_b, size_b):
    raise DataError(
        f"mixed image sizes: {path_a} is {size_a[1]}x{size_a[0]} but {path_b} is {size_b[1]}x{size_b[0]} "
        "(width x height); pass an image size (--image-size N or image_size=N) to resize every image"
    )


def decode_images(paths, scanned, skip_bad=False, max_pixels=None, progress=True, keep=True):
    """Decode the files that `scan_images` kept, under its policy.

    Catches what headers cannot show (truncated JPEGs, broken streams).

    Args:
        paths: the same paths as given to `scan_images`.
        scanned: its `DecodedImages`.
        skip_bad, max_pixels, progress: as for `scan_images`.
        keep: False decodes (to check) without keeping pixels, for streaming.

    Returns:
        A new `DecodedImages`; `bad` extends the scan's.
    """
    h, w = scanned.image_size
    bad = list(scanned.bad)
    images = np.empty((len(scanned.kept), h, w, scanned.channels), dtype="uint8") if keep else None
    kept = []
    size = scanned.image_size if scanned.fixed_size else None
    decoded = _each(
        paths,
        scanned.kept,
        lambda p: decode(p, size, scanned.channels, max_pixels),
        skip_bad,
        bad,
        "decoding images",
        progress,
    )
    for i, arr in decoded:
        if arr.shape[:2] != (h, w):  # EXIF orientation in a PNG swapped this image's sides
            _mixed_sizes(paths[scanned.kept[0]], (h, w), paths[i], arr.shape[:2])
        if keep:
            images[len(kept)] = arr
        kept.append(i)
    if keep and len(kept) < len(images):
        images = images[: len(kept)]
    return dataclasses.replace(scanned, images=images, kept=np.asarray(kept, dtype="int64"), bad=bad)


def read_images(paths, image_size=None, channels=None, skip_bad=False, max_pixels=None, progress=True):
    """`scan_images` then `decode_images`: every file checked up front, then decoded.

    Returns:
        A `DecodedImages` whose `images` is uint8 `(k, h, w, c)`.
    """
    scanned = scan_images(paths, image_size, channels, skip_bad, max_pixels, progress)
    return decode_images(paths, scanned, skip_bad, max_pixels, progress)


def resize(images, image_size):
    """Resize a batch `(n, h, w, c)` with bilinear filtering.

    uint8 batches with 1, 3 or 4 channels resize as PIL images; float batches
    resize channel by channel in PIL's 32-bit float mode, keeping their values.
    """
    h, w = parse_image_size(image_size)
    if images.shape[1:3] == (h, w):
        return images
    out = np.empty((len(images), h, w, images.shape[-1]), dtype=images.dtype)
    if images.dtype == np.uint8:
        mode = {1: "L", 3: "RGB", 4: "RGBA"}[images.shape[-1]]
        for i, img in enumerate(images):
            pil = Image.fromarray(img[..., 0] if mode == "L" else img, mode)
            out[i] = np.asarray(pil.resize((w, h), Image.Resampling.BILINEAR)).reshape(h, w, -1)
        return out
    for i, img in enumerate(images):
        for c in range(images.shape[-1]):
            pil = Image.fromarray(np.asarray(img[..., c], dtype="float32"), "F")
            out[i, ..., c] = np.asarray(pil.resize((w, h), Image.Resampling.BILINEAR))
    return out


def convert_channels(images, channels):
    """Convert a batch between 1 and 3 channels (luminance as PIL's `convert("L")`)."""
    channels = check_channels(channels)
    c = images.shape[-1]
    if channels is None or channels == c:
        return images
    if c == 1 and channels == 3:
        return np.repeat(images, 3, axis=-1)
    if c == 3 and channels == 1:
        if images.dtype != np.uint8:
            return (images @ np.array([0.299, 0.587, 0.114], dtype=images.dtype))[..., None]
        # PIL's fixed-point ITU-R 601-2 luma, so arrays match `Image.convert("L")`.
        weights = np.array([19595, 38470, 7471], dtype="uint32")
        return ((images.astype("uint32") @ weights + 0x8000) >> 16).astype("uint8")[..., None]
    raise ConfigError(f"cannot convert {c}-channel images to {channels} channels")


def to_float(images):
    """uint8 -> float32 in [0, 1]; float input is returned as float32."""
    if images.dtype == np.uint8:
        return np.divide(images, np.float32(255), dtype="float32")
    return np.asarray(images, dtype="float32")
