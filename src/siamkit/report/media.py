"""Samples as pictures and sounds for the report: thumbnails, sprites, spectrograms, WAV players.

Images are float arrays in [0, 1], `(h, w)` or `(h, w, c)`; clips are mono
float waveforms in [-1, 1]. Everything comes back as bytes or `data:` URIs
ready to inline.

Example:

>>> import numpy as np
>>> png = thumbnail_png(np.zeros((8, 8, 1)))
>>> png[:4]
b'\\x89PNG'
"""

import io
import math
import wave

import numpy as np

from ..datasets.wav import to_pcm16
from ..errors import SiamkitError
from . import page

# Longest side of a thumbnail in the sprite (larger images are shrunk to it).
SPRITE_CELL = 32
# Characters of a text item shown in a gallery cell (the whole text is its tooltip).
TEXT_CHARS = 80
# TensorBoard's projector reads sprites of at most 8192 x 8192 pixels.
MAX_SPRITE_SIDE = 8192


def _to_uint8(image):
    image = np.asarray(image, dtype="float32")
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    return np.clip(np.round(image * 255.0), 0, 255).astype("uint8")


def _pil(image, cell=None):
    from PIL import Image

    picture = Image.fromarray(_to_uint8(image))
    if cell is not None and max(picture.size) != cell:
        scale = cell / max(picture.size)
        picture = picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))))
    return picture


def _png(picture):
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def thumbnail_png(image, cell=None):
    """PNG bytes of one image, shrunk or grown so its longest side is `cell` (default: as it is)."""
    return _png(_pil(image, cell))


def thumbnail(image, alt, cls="thumb", title=None):
    """An inlined `<img>` of one image."""
    return page.img(page.data_uri(thumbnail_png(image)), alt, cls, title)


def sprite_cell(shape, n):
    """The side of one sprite cell for `n` images of `shape`: at most `SPRITE_CELL`, the sprite within 8192 px."""
    per_row = max(1, math.ceil(math.sqrt(n)))
    return max(1, min(SPRITE_CELL, max(shape[:2]), MAX_SPRITE_SIDE // per_row))


def sprite_png(images, cell, progress=None):
    """PNG bytes of `images` tiled row by row in square cells of `cell` pixels (TensorBoard's sprite layout).

    Args:
        images: an indexable of images (an array, or a lazy store).
        cell: the cell side.
        progress: optional `f(iterable) -> iterable` showing progress.

    Returns:
        `(png_bytes, per_row)`.
    """
    from PIL import Image

    n = len(images)
    per_row = max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / per_row)
    first = _pil(images[0], cell)
    sheet = Image.new(first.mode, (per_row * cell, rows * cell))
    for i in progress(range(n)) if progress else range(n):
        sheet.paste(first if i == 0 else _pil(images[i], cell), ((i % per_row) * cell, (i // per_row) * cell))
    return _png(sheet), per_row


def spectrogram_png(clip, frame=256, hop=128, height=64):
    """A log-magnitude spectrogram of a waveform as a grey PNG (low frequencies at the bottom)."""
    clip = np.asarray(clip, dtype="float32").reshape(-1)
    if len(clip) < frame:
        clip = np.pad(clip, (0, frame - len(clip)))
    starts = range(0, len(clip) - frame + 1, hop)
    frames = np.stack([clip[s : s + frame] for s in starts]) * np.hanning(frame)
    power = np.log1p(np.abs(np.fft.rfft(frames, axis=1)) * 10.0).T[::-1]
    span = power.max() - power.min()
    scaled = (power - power.min()) / span if span > 0 else np.zeros_like(power)
    return _png(_pil(scaled).resize((2 * scaled.shape[1], height)))


def wav_uri(clip, sample_rate):
    """A `data:` URI of a 16-bit PCM WAV file of `clip`, for an inline `<audio>` player."""
    import base64

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(to_pcm16(clip).tobytes())
    return "data:audio/wav;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def item_html(modality, x, index, caption, cls="thumb", sample_rate=None):
    """A `<figure>` of item `index` of `x` as its modality shows: images and clips by `sample_html`, text as
    itself (shortened to `TEXT_CHARS`), a feature vector by the name `x` holds for it."""
    if modality in ("image", "audio"):
        return sample_html(x, index, caption, cls, sample_rate)
    text = str(x[index])
    shown = text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "…"
    kind = "text" if modality == "text" else "vector"
    return (f'<figure><span class="{kind} {page.esc(cls)}" title="{page.esc(text)}">{page.esc(shown)}</span>'
            f"<figcaption>{page.esc(caption)}</figcaption></figure>")


def sample_html(x, index, caption, cls="thumb", sample_rate=None, title=None):
    """A `<figure>` of sample `index` of `x`: its thumbnail, or for a clip its spectrogram and a player.

    A sample that cannot be read (a missing image file of a lazy store)
    shows its caption and what went wrong instead.
    """
    try:
        sample = np.asarray(x[index])
    except (OSError, ValueError, SiamkitError) as err:  # a file of a lazy store gone since: the caption says so
        return f'<figure><span class="missing">unreadable</span><figcaption>{page.esc(caption)}: {page.esc(err)}' \
               "</figcaption></figure>"
    if sample.ndim == 1:
        spec = page.img(page.data_uri(spectrogram_png(sample)), f"spectrogram of {caption}", cls.replace("thumb", "spec"), title)
        player = f'<audio controls preload="none" src="{wav_uri(sample, sample_rate or 8000)}"></audio>'
        return f"<figure>{spec}{player}<figcaption>{page.esc(caption)}</figcaption></figure>"
    return f"<figure>{thumbnail(sample, caption, cls, title)}<figcaption>{page.esc(caption)}</figcaption></figure>"
