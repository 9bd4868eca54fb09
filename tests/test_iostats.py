"""Sizes as people write them, and completions turned into rate samples (scripted
timestamps: no real timing)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_perfgate.probes import ProbeInputError
from pytest_perfgate.probes.iostats import Completion, latencies, percentiles, slice_rates
from pytest_perfgate.probes.units import parse_size

MS = 1_000_000  # ns


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (4096, 4096),
        ("4096", 4096),
        ("4KiB", 4096),
        ("4k", 4096),
        ("1MiB", 2**20),
        ("1.5 GiB", 3 * 2**29),
        ("2MB", 2_000_000),
        ("1TiB", 2**40),
    ],
)
def test_parse_size(text: int | str, expected: int) -> None:
    assert parse_size(text, argument="size", where="perf.storage.write") == expected


@pytest.mark.parametrize("text", ["-1GiB", "0", 0, -5, "lots", "1 parsec", "1e3", True, "0.1B"])
def test_parse_size_names_the_argument_and_value(text: object) -> None:
    with pytest.raises(ProbeInputError, match=r"perf.storage.write: size=") as error:
        parse_size(text, argument="size", where="perf.storage.write")  # type: ignore[arg-type]
    assert repr(text) in str(error.value)


def test_slices_of_one_steady_pass_all_have_the_same_rate() -> None:
    # 40 operations of 1 MiB, each 10 ms, back to back: 100 MiB/s, 100 IO/s.
    ops = [Completion(i * 10 * MS, (i + 1) * 10 * MS, 2**20) for i in range(40)]
    rates = slice_rates([ops], 10)
    assert len(rates.mib_per_s) == 10
    assert rates.mib_per_s == pytest.approx([100.0] * 10)
    assert rates.ops_per_s == pytest.approx([100.0] * 10)
    assert rates.total_ops == 40
    assert rates.seconds == pytest.approx(0.4)
    assert rates.mean_mib_per_s == pytest.approx(100.0)


def test_a_flush_counts_in_time_not_in_operations() -> None:
    ops = [Completion(i * 10 * MS, (i + 1) * 10 * MS, 2**20) for i in range(4)]
    flush = Completion(40 * MS, 80 * MS, 0, is_io=False)
    rates = slice_rates([[*ops, flush]], 1)
    assert rates.mib_per_s == pytest.approx([4 / 0.08])
    assert rates.total_ops == 4
    assert latencies([[*ops, flush]]) == pytest.approx([0.01] * 4)


def test_gaps_between_passes_belong_to_no_slice() -> None:
    first = [Completion(i * 10 * MS, (i + 1) * 10 * MS, 2**20) for i in range(5)]
    # The second pass starts 1 s later (the page cache was being dropped).
    second = [Completion(c.start_ns + 1000 * MS, c.end_ns + 1000 * MS, c.nbytes) for c in first]
    rates = slice_rates([first, second], 2)
    assert rates.mib_per_s == pytest.approx([100.0] * len(rates.mib_per_s))
    assert rates.seconds == pytest.approx(0.1)


def test_overlapping_operations_count_once_in_time() -> None:
    """Four operations in flight at once, each 40 ms: 4 MiB every 40 ms."""
    ops = [Completion(k * 40 * MS, (k + 1) * 40 * MS, 2**20) for k in range(10) for _ in range(4)]
    rates = slice_rates([ops], 5)
    assert rates.mib_per_s == pytest.approx([100.0] * 5)


def test_a_short_tail_joins_the_last_slice() -> None:
    ops = [Completion(i * MS, (i + 1) * MS, 1) for i in range(21)]
    rates = slice_rates([ops], 10)
    assert len(rates.mib_per_s) == 10
    assert rates.total_ops == 21


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=1000), min_size=1, max_size=200))
def test_slices_account_for_every_byte_and_every_nanosecond(durations: list[int]) -> None:
    ops, clock = [], 0
    for d in durations:
        ops.append(Completion(clock, clock + d, d))
        clock += d
    rates = slice_rates([ops], 7)
    assert rates.total_bytes == sum(durations)
    assert rates.seconds == pytest.approx(sum(durations) / 1e9)


def test_slice_rates_needs_completions() -> None:
    with pytest.raises(ValueError, match="no completions"):
        slice_rates([[]], 5)


def test_percentiles_are_order_statistics() -> None:
    values = [float(v) for v in range(1, 1001)]
    figures = percentiles(values)
    assert figures == {"p50": 500.0, "p90": 900.0, "p99": 990.0, "p99.9": 999.0, "max": 1000.0}
    assert percentiles([]) == {}


def test_a_slice_of_flushes_alone_joins_its_neighbour() -> None:
    """A pass cut by the ramp may keep only its final flush: no slice of zero bytes."""
    ops = [Completion(i * 10 * MS, (i + 1) * 10 * MS, 2**20) for i in range(4)]
    flush = Completion(40 * MS, 60 * MS, 0, is_io=False)
    rates = slice_rates([[*ops, flush], [flush]], 5)
    assert min(rates.mib_per_s) > 0
    assert rates.total_ops == 4
    assert rates.seconds == pytest.approx(0.06)
