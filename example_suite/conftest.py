"""Inputs shared by the example perf tests: built once, outside any timed span."""

import json
import random

import pytest


@pytest.fixture(scope="session")
def document() -> str:
    """A JSON document of ~60 KB: 500 records of mixed types."""
    rng = random.Random(42)
    records = [
        {
            "id": i,
            "name": "".join(rng.choice("abcdefghij") for _ in range(12)),
            "score": rng.random() * 100,
            "tags": [rng.choice(["red", "green", "blue", "cyan"]) for _ in range(4)],
            "active": rng.random() < 0.5,
        }
        for i in range(500)
    ]
    return json.dumps(records)
