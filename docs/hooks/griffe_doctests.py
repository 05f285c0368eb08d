"""Griffe extension: render the docstrings' doctests as Python console code.

The docstrings put their doctests under a plain `Example:` line, not
indented as a Google-style section, so Markdown would read the `>>>` lines
as nested quotes. Each run of doctest lines (up to a blank line) is fenced
as `pycon` code instead.
"""

import griffe


def fence_doctests(text):
    out, block = [], []
    for line in [*text.splitlines(), ""]:
        if block and line.strip():
            block.append(line)
            continue
        if block:
            out += ["```pycon", *block, "```"]
            block = []
        if line.lstrip().startswith(">>>"):
            block.append(line)
        else:
            out.append(line)
    return "\n".join(out[:-1])


class DoctestBlocks(griffe.Extension):
    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
