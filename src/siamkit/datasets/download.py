"""Download a file with a SHA-256 check, atomically.

The network is reached only through `urllib.request.urlopen`, so tests
replace that one function to serve synthetic archives offline.
"""

import hashlib
import os
import urllib.error
import urllib.request

from .. import _io
from ..errors import DataError
from ._progress import progress as progress_bar

CHUNK = 1 << 20
TIMEOUT = 60


def sha256_file(path):
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url, path, sha256=None, progress=True, timeout=TIMEOUT):
    """Fetch `url` into `path`; the file appears only once complete and verified.

    Args:
        url: what to fetch.
        path: destination file.
        sha256: expected hex SHA-256 of the file, or None for sources whose
            bytes are not stable (their content is checked after conversion).
        progress: show a progress bar on a terminal.
        timeout: seconds to wait for the server.

    Raises:
        OSError: the download failed (`urllib.error.URLError` included).
        DataError: the file's checksum does not match.
    """
    digest = hashlib.sha256()
    with _io.atomic_path(path) as tmp:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
            total = response.headers.get("Content-Length") if hasattr(response, "headers") else None
            chunks = iter(lambda: response.read(CHUNK), b"")
            bar = progress_bar(
                chunks,
                f"downloading {os.path.basename(path)}",
                progress,
                total=int(total) // CHUNK + 1 if total else None,
                unit="MiB",
            )
            for chunk in bar:
                digest.update(chunk)
                out.write(chunk)
        if sha256 is not None and digest.hexdigest() != sha256:
            raise DataError(
                f"{url}: SHA-256 {digest.hexdigest()} does not match the expected {sha256}; "
                "the download is corrupt or the file changed upstream, so it was not used"
            )
    return path
