"""Files held in memory, read wherever a reader takes a path.

A service receives files as bytes; writing them to disk only to read them
back costs more than decoding them (a temporary folder is a few
milliseconds on a slow disk). The image and WAV readers accept a
`MemoryFile` in place of a path and name it in their messages.

Example:

>>> from siamkit.datasets.memory import MemoryFile, name_of
>>> name_of(MemoryFile("query.png", b"..."))
'query.png'
"""

import io
import os
import typing


class MemoryFile(typing.NamedTuple):
    """A file's name (for messages and its type) and its bytes."""

    name: str
    data: bytes


def open_binary(source):
    """A binary file object for a path or a `MemoryFile`."""
    return io.BytesIO(source.data) if isinstance(source, MemoryFile) else open(source, "rb")


def name_of(source):
    """How messages name a path or a `MemoryFile`."""
    return source.name if isinstance(source, MemoryFile) else os.fspath(source)
