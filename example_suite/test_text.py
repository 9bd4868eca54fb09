"""Text processing: parsing, tokenizing, formatting."""

import json
import re

import pytest

WORD = re.compile(r"[A-Za-z]+|\d+(?:\.\d+)?")


@pytest.mark.perf
def test_json_parse(perf, document):
    records = perf(json.loads, document)
    assert len(records) == 500


@pytest.mark.perf
def test_json_dump(perf, document):
    records = json.loads(document)
    text = perf(json.dumps, records, sort_keys=True)
    assert text.startswith("[")


@pytest.mark.perf
@pytest.mark.parametrize("size", [100, 10_000])
def test_tokenize(perf, document, size):
    tokens = perf(WORD.findall, document[:size])
    assert tokens


@pytest.mark.perf(threshold=0.05)
def test_format_report(perf, document):
    records = json.loads(document)

    def report():
        return "\n".join(f"{r['id']:>5} {r['name']:<12} {r['score']:8.2f}" for r in records)

    assert perf(report).count("\n") == 499
