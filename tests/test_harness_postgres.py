"""Which PostgreSQL the tests use: BOT_TEST_POSTGRES_URL, or a server found on 127.0.0.1:5432, or none."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from tests.harness import PG_ENV, POSTGRES, ROOT, choose_postgres


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never says a word (not PostgreSQL)."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        server.close()


@pytest.mark.parametrize("value", ["", "off", "OFF", "0", " false "])
def test_an_empty_or_off_url_skips_postgresql_without_looking(value: str) -> None:
    choice = choose_postgres({PG_ENV: value}, default_url=f"postgresql://postgres@127.0.0.1:{_free_port()}/x")
    assert choice.url == ""
    assert choice.summary() == f"databases: sqlite; postgresql: skipped ({PG_ENV}={value.strip()})"


def test_an_explicit_url_is_used_as_it_is() -> None:
    url = "postgresql://bot:secret@db.invalid:6543/test"
    choice = choose_postgres({PG_ENV: url})
    assert choice.url == url
    assert choice.summary() == f"databases: sqlite, postgresql (db.invalid:6543, from {PG_ENV})"


def test_unset_and_nothing_listening_skips_naming_the_address() -> None:
    port = _free_port()
    choice = choose_postgres({}, default_url=f"postgresql://postgres@127.0.0.1:{port}/postgres")
    assert choice.url == ""
    assert f"nothing answers on 127.0.0.1:{port}" in choice.reason and PG_ENV in choice.reason


def test_unset_and_a_server_that_is_not_postgresql_skips_after_the_timeout(silent_server: int) -> None:
    choice = choose_postgres(
        {}, default_url=f"postgresql://postgres@127.0.0.1:{silent_server}/postgres", timeout=0.3
    )
    assert choice.url == ""
    assert f"127.0.0.1:{silent_server} did not answer within 0.3 s" in choice.reason


def test_unset_and_a_postgresql_answering_uses_it() -> None:
    if not POSTGRES.url:
        pytest.skip(f"no PostgreSQL here: {POSTGRES.reason}")
    choice = choose_postgres({}, default_url=POSTGRES.url)
    assert choice.url == POSTGRES.url
    assert choice.reason.startswith("found running")


def _summary_of_a_run(environ: dict[str, str]) -> list[str]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_packaging.py::test_license_is_an_spdx_expression",
        ],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return [line for line in result.stdout.splitlines() if line.startswith("databases:")]


def test_the_run_says_which_databases_ran() -> None:
    environ = {k: v for k, v in os.environ.items() if k != PG_ENV}
    assert _summary_of_a_run({**environ, PG_ENV: "off"}) == [
        f"databases: sqlite; postgresql: skipped ({PG_ENV}=off)"
    ]
    # unset: whatever this machine has on 127.0.0.1:5432, the run reports the same choice
    assert _summary_of_a_run(environ) == [choose_postgres(environ).summary()]
