"""Probes: each turns one kind of work (CPU calls, memory) into samples."""
