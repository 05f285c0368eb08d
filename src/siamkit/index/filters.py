"""Metadata filters: which items a search may return.

A filter is a dict `{field: values}`: an item passes when, for every field,
its metadata value equals one of `values` (a single value stands for a list
of one). Values are strings, integers or booleans; a boolean never equals
an integer. Every index backend applies a filter exactly: Qdrant in its own
engine, the file indexes by searching only the items that pass.

On the command line a filter is `FIELD=VALUE` (`--filter label=shoes`,
repeatable); a value that reads as an integer also matches that integer, so
`--filter year=2020` finds `{"year": 2020}` as well as `{"year": "2020"}`.

A field that no item of the index has is refused (`DataError`), so a typo
does not silently return nothing.

Example:

>>> f = parse(["label=shoes", "year=2020"])
>>> f
{'label': ['shoes'], 'year': ['2020', 2020]}
>>> matches({"label": "shoes", "year": 2020, "path": "a.png"}, f)
True
>>> matches({"label": "boots", "year": 2020}, f)
False
"""

from ..errors import ConfigError, DataError

_VALUES = (str, int, bool)


def parse(pairs):
    """A filter from `FIELD=VALUE` strings (the CLI's `--filter`), or None for none."""
    found = {}
    for pair in pairs or ():
        field, sep, value = pair.partition("=")
        if not sep or not field:
            raise ConfigError(f"invalid --filter {pair!r}; write FIELD=VALUE, e.g. label=shoes")
        values = found.setdefault(field, [])
        values.append(value)
        try:
            values.append(int(value))
        except ValueError:
            pass
    return found or None


def check(filter):
    """`filter` as `{field: [values]}`, checked, or None for no filter.

    Raises a `ConfigError` for anything but a dict of string fields to
    strings, integers, booleans or non-empty lists of them.
    """
    if filter is None:
        return None
    if not isinstance(filter, dict):
        raise ConfigError(f"a filter must be a dict {{field: value}}, got {filter!r}")
    out = {}
    for field, values in filter.items():
        values = list(values) if isinstance(values, (list, tuple)) else [values]
        if not isinstance(field, str) or not field or field == "id":
            raise ConfigError(f"filter fields are metadata keys (not 'id'), got {field!r}")
        if not values or not all(isinstance(v, _VALUES) for v in values):
            raise ConfigError(
                f"filter on {field!r}: values must be strings, integers or booleans (or a list of them), got {values!r}"
            )
        out[field] = values
    return out or None


def _equal(a, b):
    return isinstance(a, bool) == isinstance(b, bool) and a == b and isinstance(a, _VALUES)


def matches(record, filter):
    """True if the metadata `record` (a dict) passes the checked `filter`."""
    return all(any(_equal(record.get(field), v) for v in values) for field, values in filter.items())


def check_fields(filter, known, where):
    """Raise a `DataError` naming the first field of `filter` that is not among `known` (fields of `where`)."""
    for field in filter:
        if field not in known:
            have = ", ".join(sorted(known)) or "none"
            raise DataError(f"no item of {where} has the metadata field {field!r} (fields: {have}); check the filter")
