"""Coverage-guided fuzzing of siamkit's file readers with atheris (libFuzzer).

Where `tests/test_fuzz.py` damages valid files in known ways, this feeds
each reader the raw bytes libFuzzer derives from a valid file, steered by
the branches they reach in siamkit, Pillow and the standard library's
`wave`. The property is the same: each input gives a result or a
`SiamkitError` with a message; any other exception is a crash (libFuzzer
stops, writes the input to `crash-*` in the working directory and exits
non-zero), an input taking more than `-timeout` seconds a hang.

Usage:

    pip install atheris
    python benchmarks/fuzz_atheris.py images -max_total_time=60    # any libFuzzer option after the reader
    python benchmarks/fuzz_atheris.py wav -runs=100000

READER is one of `images` (`datasets.images.read_header` and `decode`),
`wav` (`datasets.wav.decode_wav`), `pair_csv` (`datasets.folders.load_pairs`)
or `toml` (`training.config.resolve`). libFuzzer prints the executions
(`Done N runs in S second(s)`); `benchmarks/robustness.py --atheris SECONDS`
runs every reader and records them.
"""

import io
import os
import sys
import tempfile
import wave

import atheris
import numpy as np

with atheris.instrument_imports(include=["siamkit", "PIL", "wave"]):
    from PIL import Image

    from siamkit.datasets.folders import load_pairs
    from siamkit.datasets.images import decode, read_header
    from siamkit.datasets.wav import decode_wav
    from siamkit.errors import SiamkitError
    from siamkit.training.config import resolve

def _png(mode="L"):
    buffer = io.BytesIO()
    Image.new(mode, (5, 3), 120).save(buffer, "PNG")
    return buffer.getvalue()


def _wav():
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes((np.sin(np.arange(64)) * 9000).astype("<i2").tobytes())
    return buffer.getvalue()


def _read_image(path):
    read_header(path)
    decode(path, (5, 9), 3, max_pixels=1 << 20)


def _read_pairs(path):
    load_pairs(path, image_size=4, progress=False)


# reader: (file name, read(path), valid seed files)
READERS = {
    "images": ("image.png", _read_image, [_png("L"), _png("RGBA"), _png("P")]),
    "wav": ("clip.wav", lambda path: decode_wav(path, name="clip.wav"), [_wav()]),
    "pair_csv": ("pairs.csv", _read_pairs, [b"path_a,path_b,label\na.png,b.png,1\nb.png,a.png,0\n",
                                            "\ufeffa.png,b.png,1\n".encode("utf-8")]),
    "toml": ("config.toml", resolve, [b'epochs = 2\nloss = "triplet"\nval_fraction = 0.2\n',
                                      b'[encoder_options]\nhidden_units = [8]\n']),
}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in READERS:
        raise SystemExit(f"usage: fuzz_atheris.py {{{','.join(READERS)}}} [libFuzzer options]")
    name, read, seeds = READERS[sys.argv[1]]
    workdir = tempfile.mkdtemp(prefix="siamkit-atheris-")  # libFuzzer ends the process: left for /tmp's cleaning
    for image in ("a.png", "b.png"):  # what the seed pair CSVs name
        Image.new("L", (4, 4), 200).save(os.path.join(workdir, image))
    corpus = os.path.join(workdir, "corpus")
    os.makedirs(corpus)
    for i, seed in enumerate(seeds):
        with open(os.path.join(corpus, f"seed-{i}"), "wb") as f:
            f.write(seed)
    path = os.path.join(workdir, name)

    def one_input(data):
        with open(path, "wb") as f:
            f.write(data)
        try:
            read(path)
        except SiamkitError as err:
            if not str(err).strip():
                raise AssertionError(f"{type(err).__name__} without a message") from err

    for seed in seeds:  # imports what a reader loads on first use (Keras for TOML) before libFuzzer's timeout runs
        one_input(seed)
    atheris.Setup([sys.argv[0], *sys.argv[2:], corpus], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
