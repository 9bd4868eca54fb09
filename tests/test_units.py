"""The one size rule every probe reads sizes by (storage, network, collectives)."""

from __future__ import annotations

import pytest

from pytest_perfgate.probes import ProbeInputError
from pytest_perfgate.probes.units import format_size, parse_size, size_label


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("64MB", 64 * 10**6),  # SI
        ("64MiB", 64 * 2**20),  # IEC
        ("64M", 64 * 2**20),  # a bare letter is binary (fio, nccl-tests)
        ("500mb", 500 * 10**6),  # case does not matter
        ("2kB", 2000),
        ("2KiB", 2048),
        ("1GB", 10**9),
        ("1TB", 10**12),
        ("3B", 3),
        (4096, 4096),
    ],
)
def test_si_units_are_decimal_and_iec_units_binary(text: int | str, expected: int) -> None:
    assert parse_size(text, argument="size", where="perf.storage.write") == expected


def test_a_fraction_of_a_byte_is_refused() -> None:
    with pytest.raises(ProbeInputError, match=r"perf.net.latency: size='1.5B' is not a whole"):
        parse_size("1.5B", argument="size", where="perf.net.latency")


@pytest.mark.parametrize("size", [1, 999, 1000, 1024, 4000, 64 * 10**6, 3 * 2**30, 10**12 + 1])
def test_a_label_reads_back_as_its_size(size: int) -> None:
    assert parse_size(size_label(size), argument="size", where="test") == size


def test_messages_show_binary_units() -> None:
    assert format_size(64 * 2**20) == "64 MiB"
    assert format_size(64 * 10**6) == "61 MiB"
    assert format_size(512) == "512 B"
