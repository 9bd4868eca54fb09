"""Probes: one concern each (CPU calls, memory, GPU work, storage, network, collectives)."""

from __future__ import annotations


class ProbeUnavailable(Exception):
    """What a probe needs is not here (no GPU, no driver, no torch...).

    The pytest layer turns it into a skip whose reason is this message, so a suite runs
    its other tests on a machine without the hardware; the message names what is missing
    (for NVML, the error's name).
    """


class ProbeInputError(ValueError):
    """A probe was given something it cannot measure with (a bad size, a directory it
    cannot write, an endpoint that refuses): the message names the argument and value."""
