"""Exceptions that siamkit raises for bad input.

The CLI turns every `SiamkitError` into a one-line message and a non-zero exit,
with no traceback, so each message must say what was wrong and what to do.
"""


class SiamkitError(Exception):
    """Base class of the errors that siamkit reports to users."""


class ConfigError(SiamkitError, ValueError):
    """An option or configuration value is invalid."""


class DataError(SiamkitError, ValueError):
    """Input data (a file, an array, a folder) cannot be used."""


def check_choice(name, value, choices):
    """Return `value` if it is one of `choices`, else raise a `ConfigError`.

    Args:
        name: the option's name, used in the message.
        value: the value given.
        choices: the valid values.
    """
    if value not in choices:
        valid = ", ".join(repr(c) for c in choices)
        raise ConfigError(f"invalid {name} {value!r}; valid choices are: {valid}")
    return value
