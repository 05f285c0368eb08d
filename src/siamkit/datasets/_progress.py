"""One progress-bar convention for every file pass."""


def progress(iterable, desc, enabled=True, total=None, unit="file"):
    """Wrap `iterable` in a tqdm bar on stderr; shown only on a terminal.

    Args:
        iterable: what to iterate.
        desc: the bar's label.
        enabled: False turns the bar off.
        total: length, when `iterable` has none.
        unit: the unit name.
    """
    from tqdm.auto import tqdm

    # disable=None lets tqdm hide the bar when stderr is not a terminal (logs, CI).
    return tqdm(iterable, desc=desc, total=total, unit=unit, disable=None if enabled else True, leave=False)
