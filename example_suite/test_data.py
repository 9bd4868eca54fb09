"""Data handling: sorting, aggregation, compression, with setup, async and memory."""

import asyncio
import random
import zlib
from collections import Counter

import pytest


@pytest.mark.perf
def test_sort_floats(perf):
    rng = random.Random(1)
    values = [rng.random() for _ in range(20_000)]
    # A fresh unsorted copy per call, made outside the timed span.
    perf.call(sorted, setup=lambda: ((values[:],), {}))


@pytest.mark.perf
def test_count_words(perf, document):
    words = document.split('"')
    assert perf(Counter, words)


@pytest.mark.perf(memory=True)
def test_compress(perf, document):
    payload = document.encode()
    compressed = perf(zlib.compress, payload, 6)
    assert zlib.decompress(compressed) == payload


@pytest.mark.perf
def test_async_gather(perf):
    async def fan_out():
        return await asyncio.gather(*(asyncio.sleep(0) for _ in range(50)))

    assert len(perf(fan_out)) == 50
