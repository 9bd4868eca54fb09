"""Sizes as people write them: one rule for every probe (storage, network, collectives).

- ``kB``, ``MB``, ``GB``, ``TB`` are powers of 1000 and ``KiB``, ``MiB``, ``GiB``,
  ``TiB`` powers of 1024, as the SI and IEC units say: ``"64MB"`` is 64,000,000 bytes,
  ``"64MiB"`` is 67,108,864.
- A bare letter is binary: ``"4k"`` is 4096 bytes and ``"64M"`` 64 MiB, as fio
  (``bs=4k``) and nccl-tests (``-b 64M``) read them.
- A plain integer, or a number with ``B`` or no unit, is bytes. Case does not matter;
  a size must be a positive whole number of bytes.
"""

from __future__ import annotations

import re

from . import ProbeInputError

#: Bytes per unit, by the unit's lower-cased name.
SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 2**10,
    "kib": 2**10,
    "kb": 10**3,
    "m": 2**20,
    "mib": 2**20,
    "mb": 10**6,
    "g": 2**30,
    "gib": 2**30,
    "gb": 10**9,
    "t": 2**40,
    "tib": 2**40,
    "tb": 10**12,
}
_SIZE = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")

#: Units a label is written in, largest first; binary before decimal of a size.
_LABEL_UNITS = (
    ("TiB", 2**40),
    ("GiB", 2**30),
    ("MiB", 2**20),
    ("KiB", 2**10),
    ("TB", 10**12),
    ("GB", 10**9),
    ("MB", 10**6),
    ("kB", 10**3),
)


def parse_size(value: int | str, *, argument: str, where: str) -> int:
    """``"64MiB"`` -> 67108864, ``"64MB"`` -> 64000000; ints are bytes. Errors are
    :class:`ProbeInputError` naming ``where``, ``argument`` and the value."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ProbeInputError(f"{where}: {argument}={value!r} is not a size")
    if isinstance(value, int):
        number = value
    else:
        match = _SIZE.match(value)
        unit = match.group(2).lower() if match else ""
        if match is None or unit not in SIZE_UNITS:
            raise ProbeInputError(
                f"{where}: {argument}={value!r} is not a size "
                "(write e.g. 4096, '4KiB', '64MiB', '500MB')"
            )
        exact = float(match.group(1)) * SIZE_UNITS[unit]
        number = int(exact)
        if number != exact:
            raise ProbeInputError(f"{where}: {argument}={value!r} is not a whole number of bytes")
    if number <= 0:
        raise ProbeInputError(f"{where}: {argument}={value!r} must be a positive size")
    return number


def size_label(size: int) -> str:
    """The shortest exact label of ``size`` bytes, which :func:`parse_size` reads back:
    67108864 -> ``"64MiB"``, 64000000 -> ``"64MB"``, 1536 -> ``"1536B"``."""
    exact = [(size // unit, suffix) for suffix, unit in _LABEL_UNITS if size % unit == 0]
    if size <= 0 or not exact:
        return f"{size}B"
    count, suffix = min(exact, key=lambda pair: pair[0])  # min keeps the first of a tie
    return f"{count}{suffix}"


def format_size(n: float) -> str:
    """Bytes for a message, in binary units: ``67108864`` -> ``"64 MiB"``."""
    for scale, suffix in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= scale:
            return f"{n / scale:.3g} {suffix}"
    return f"{n:.0f} B"
