"""A throwaway PostgreSQL server for tests and benchmarks: Debian's binaries, a temporary
directory, a Unix socket in it, no TCP. PostgreSQL refuses to run as root, so as root the
server runs as the ``postgres`` user (which Debian's package creates)."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

# Imported here, at collection: pytester's in-process runs unload the modules a run
# imported, and a psycopg imported again beside its already-loaded C extension raises
# errors of classes the new module does not know.
with contextlib.suppress(ImportError):
    import psycopg  # noqa: F401


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin directory, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _major(path: str) -> int:
    try:
        return int(Path(path).parent.parent.name)
    except ValueError:
        return 0


def missing_reason() -> str | None:
    """Why no server can be started here (None when one can)."""
    if postgres_bin() is None:
        return "PostgreSQL binaries not found (apt-get install postgresql)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg not installed (pip install 'pytest-perfgate[postgres]')"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as"
    return None


def _as_server_user(command: Sequence[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


@contextmanager
def running_server(*, fsync: bool = False) -> Iterator[str]:
    """Start a server; yield the URL of its ``postgres`` database; stop it and remove
    everything at the end. ``fsync`` off makes tests faster and changes nothing they see."""
    bin_dir = postgres_bin()
    assert bin_dir is not None, missing_reason()
    # Not under pytest's tmp_path: its parents are private to root, the server's user
    # must reach the socket directory.
    root = Path(tempfile.mkdtemp(prefix="perfgate-pg-"))
    data, log = root / "data", root / "server.log"
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(root, entry.pw_uid, entry.pw_gid)
    try:
        subprocess.run(
            _as_server_user(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(data),
                    "-A",
                    "trust",
                    "-U",
                    "perfgate",
                    "--no-sync",
                    "-E",
                    "UTF8",
                    "--locale",
                    "C",
                ]
            ),
            check=True,
            capture_output=True,
        )
        options = f"-k {root} -c listen_addresses='' -c fsync={'on' if fsync else 'off'}"
        subprocess.run(
            _as_server_user(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(log),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
        try:
            yield f"postgresql://perfgate@/postgres?host={root}"
        finally:
            subprocess.run(
                _as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]),
                check=False,
                capture_output=True,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def fresh_schema_url(server_url: str, name: str) -> str:
    """A URL whose tables live in a new, empty schema ``name``: each test its own history
    on one server."""
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{name}"')
    return f"{server_url}&options=-csearch_path%3D{name}"


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[str]:
    """One server for a test module; skipped, with the reason, where none can run."""
    reason = missing_reason()
    if reason:
        pytest.skip(f"no PostgreSQL server: {reason}")
    with running_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def history_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty history of each kind: an SQLite file, a schema on the server."""
    if request.param == "sqlite":
        return str(tmp_path / "sub" / "history.sqlite")
    server: str = request.getfixturevalue("postgres_server")
    return fresh_schema_url(server, f"t_{tmp_path.name.lower().replace('-', '_')}")
