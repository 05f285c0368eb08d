"""Free Spoken Digit Dataset: the repository's WAV recordings -> cache schema -> audio.

Recordings are `recordings/{digit}_{speaker}_{index}.wav`, mono int16 at
8 kHz. The official test set is takes 0-4 of every (speaker, digit). The cache
schema (`fsdd.npz`) is documented in the shared/data README: all samples end
to end in `audio`, with `offsets`, sorted by speaker, digit, then index.
"""

import os
import re
import tarfile

import numpy as np

from ..errors import DataError
from .base import Dataset
from .sources import Remote, ensure
from .waveforms import Waveforms, read_wav

SUBSETS = ("train", "test")
TEST_TAKES = 5
_ENTRY = re.compile(r"(?:^|/)recordings/(\d)_([A-Za-z]+)_(\d+)\.wav$")
_COMMIT = "26eb9aaf76e81b692f806f9140c2d2777410d7a1"


def convert_archive(paths):
    """The repository's tar.gz archive -> the cache schema's arrays.

    Args:
        paths: `{archive name: path}` (one archive).
    """
    records = []  # (speaker, digit, index, filename, samples)
    rates = set()
    for name, path in paths.items():
        try:
            with tarfile.open(path) as archive:
                for member in archive:
                    match = _ENTRY.search(member.name)
                    if not match or not member.isfile():
                        continue
                    digit, speaker, index = match.groups()
                    samples, rate = read_wav(archive.extractfile(member), name=member.name)
                    rates.add(rate)
                    records.append((speaker, int(digit), int(index), os.path.basename(member.name), samples))
        except tarfile.TarError as err:
            raise DataError(f"{name}: not a readable tar archive ({err})") from None
    if not records:
        raise DataError(f"no recordings/DIGIT_SPEAKER_INDEX.wav entries in {', '.join(paths)}")
    if len(rates) != 1:
        raise DataError(f"FSDD recordings have mixed sample rates {sorted(rates)}")
    records.sort(key=lambda r: r[:3])
    speakers = sorted({r[0] for r in records})
    audio = Waveforms.from_list([r[4] for r in records], rates.pop())
    index = np.array([r[2] for r in records], dtype="uint8")
    return {
        "audio": audio.samples,
        "offsets": audio.offsets,
        "lengths": audio.lengths.astype("int32"),
        "digit": np.array([r[1] for r in records], dtype="uint8"),
        "speaker": np.array([speakers.index(r[0]) for r in records], dtype="uint8"),
        "speaker_names": np.array(speakers),
        "index": index,
        "split": (index < TEST_TAKES).astype("uint8"),
        "filenames": np.array([r[3] for r in records]),
        "sample_rate": np.int32(audio.sample_rate),
    }


# GitHub builds archives on the fly, so their bytes may change; the converted
# audio is checked instead (the SHA-256 of `audio` in shared/data's fsdd.npz).
REMOTE = Remote(
    {"fsdd.tar.gz": (f"https://github.com/Jakobovski/free-spoken-digit-dataset/archive/{_COMMIT}.tar.gz", None)},
    convert_archive,
    content_sha256={"audio": "4e0317650d9c876eeda8788b4d4132af747e323d495a3da12c9bce9bc456a45f"},
)


def load_fsdd(subset=None, data_dir=None, download=True):
    """Load the Free Spoken Digit Dataset: 3,000 recordings, 6 speakers, 10 digits.

    Args:
        subset: `"train"` (takes 5-49, 2,700 clips), `"test"` (takes 0-4,
            300 clips), or None for all.
        data_dir, download: as for `sources.ensure`.

    Returns:
        A `Dataset` whose `x` is a `Waveforms` (int16 at `info["sample_rate"]`),
        `y` the digit, `meta` with `digit`, `speaker`, `index`, `split`
        (0 train, 1 test), `info` with `speaker_names` and `sample_rate`.

    Example:

    >>> ds = load_fsdd("test")                             # doctest: +SKIP
    >>> len(ds), ds.info["sample_rate"], ds.x[0].dtype
    (300, 8000, dtype('int16'))
    """
    path = ensure("fsdd.npz", REMOTE, data_dir, download)
    with np.load(path, allow_pickle=False) as f:
        audio = Waveforms(f["audio"], f["offsets"], int(f["sample_rate"]))
        meta = {k: f[k] for k in ("digit", "speaker", "index", "split")}
        info = {
            "speaker_names": [str(s) for s in f["speaker_names"]],
            "sample_rate": audio.sample_rate,
            "class_names": [str(i) for i in range(10)],
            "path": path,
        }
    ds = Dataset("fsdd", audio, meta["digit"].astype("int64"), meta, info)
    return ds if subset is None else ds.subset(ds.meta["split"] == SUBSETS.index(subset))
