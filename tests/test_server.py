"""``alliance-bot serve``: a real process answering ``GET /healthz``."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from pathlib import Path

import aiohttp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_serve_answers_healthz(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_") or k.startswith("BOT_TEST_")}
    env.update(BOT_PORT=str(port), BOT_DATABASE_URL=database_url)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "serve",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        banner = (await asyncio.wait_for(process.stdout.readline(), timeout=60)).decode()
        assert f"127.0.0.1:{port}" in banner and "live channels" in banner
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200
                body = json.loads(await response.text())
            async with session.get(f"http://127.0.0.1:{port}/nope") as response:
                assert response.status == 404
        assert body["status"] == "ok"
        assert body["database"] in ("sqlite", "postgresql")
        assert body["outbox"] == {"pending": 0, "failed": 0}
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=30)
