"""The problems command line: ``route`` (the JSON contract, ``--stdin`` batches) as a real process, ``problems
import`` with bad lines and re-import, and ``eval routing`` on the shared samples."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.cli.main import build_parser
from bot.cli.problems import PROGRESS_FROM
from bot.services.studios import load_roster
from bot.settings import Settings
from bot.store import Store
from bot.store.problems import ProblemRepo, ProblemStatus
from tests.harness import SHARED
from tests.test_cli import run

SAMPLES = SHARED / "samples"
ROSTER = SAMPLES / "studios.yaml"
QUESTIONS = SAMPLES / "questions.jsonl"
CHATTER = SAMPLES / "chatter.jsonl"
SHIELD = "壁后注浆压力给多少合适？覆土10m，粉细砂"
pytestmark = pytest.mark.skipif(not ROSTER.exists(), reason="shared samples not available")


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    """A database with the sample roster."""
    opened = await Store.open(settings.effective_database_url)
    await opened.studios.import_roster(load_roster(ROSTER))
    try:
        yield opened
    finally:
        await opened.close()


async def cli(settings: Settings, *argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return int(await args.run(args, settings))


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


HISTORY = [
    json.dumps(
        {"id": "h001", "text": "盾构壁后注浆压力怎么定？", "studio": "tunnel-shield", "answer": "按覆土计算"}
    ),
    "{not json",
    json.dumps({"id": "h003", "text": "", "studio": "tunnel-shield", "answer": "x"}),
    json.dumps({"id": "h004", "text": "架梁机支腿同步差", "studio": "X9", "answer": "x"}),
    "",
    json.dumps(["a list"]),
    json.dumps(
        {"id": "h007", "text": "接触网吊弦长度怎么算？", "studio": "ocs-catenary", "answer": "按跨距计算"}
    ),
    json.dumps(
        {"text": "没有编号的问题：锚杆拉拔试验怎么做？", "studio": "tunnel-blast", "answer": "抽检3%"}
    ),
]


async def test_import_reports_bad_lines_and_is_idempotent(
    store: Store, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_lines(tmp_path / "history.jsonl", HISTORY)
    assert await cli(settings, "problems", "import", str(path)) == 1
    out, err = capsys.readouterr()
    assert "导入完成：新增已解决问题 3 个，已导入过跳过 0 个，有误 4 行。" in out
    assert "第 2 行：不是有效的 JSON" in err
    assert "第 3 行：缺少问题内容 text" in err
    assert "第 4 行：工作室 X9 不在花名册中" in err
    assert "第 6 行：应为一个 JSON 对象" in err
    assert (
        "第 5 行" not in err and "第 7 行" not in err and "导入 [" not in err
    )  # small file: no progress bar
    repo = ProblemRepo(store.sessions)
    problems = sorted(await repo.find(), key=lambda p: p.id or 0)
    assert [(p.ref, p.studio_id, p.state, p.alliance_id, p.source) for p in problems] == [
        ("h001", "tunnel-shield", ProblemStatus.SOLVED, "tunnel", "import"),
        ("h007", "ocs-catenary", ProblemStatus.SOLVED, "power", "import"),
        (None, "tunnel-blast", ProblemStatus.SOLVED, "tunnel", "import"),
    ]
    assert problems[0].answer == "按覆土计算" and problems[0].solved_at is not None
    detail = await repo.detail(problems[0].id or 0)
    assert detail is not None and [e.action for e in detail.events] == ["imported"]
    # again: nothing new, by reference (and by text for lines without one)
    assert await cli(settings, "problems", "import", str(path)) == 1
    out, _ = capsys.readouterr()
    assert "新增已解决问题 0 个，已导入过跳过 3 个" in out
    assert len(await repo.find()) == 3


async def test_large_import_shows_progress(
    store: Store, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        json.dumps(
            {"id": f"g{n:05d}", "text": f"第{n}号墩身模板支撑验算", "studio": "bridge-temp", "answer": "a"}
        )
        for n in range(PROGRESS_FROM + 50)
    ]
    path = write_lines(tmp_path / "big.jsonl", lines)
    assert await cli(settings, "problems", "import", str(path)) == 0
    out, err = capsys.readouterr()
    assert f"新增已解决问题 {len(lines)} 个" in out
    assert "导入 [" in err and f"{len(lines)}/{len(lines)}" in err
    assert await cli(settings, "problems", "import", str(tmp_path / "missing.jsonl")) == 1
    assert "无法读取文件" in capsys.readouterr().err


async def test_eval_routing_on_the_samples(
    store: Store, settings: Settings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = await cli(settings, "eval", "routing", "--questions", str(QUESTIONS), "--chatter", str(CHATTER))
    assert code == 0
    figures = dict(line.split(": ") for line in capsys.readouterr().out.splitlines())
    assert figures["questions"] == "70" and figures["chatter"] == "20"
    assert float(figures["top-1 accuracy"]) >= 0.90 and float(figures["top-3 accuracy"]) >= 0.98
    assert float(figures["judged chatter"]) >= 0.97 and float(figures["judged problem"]) >= 0.97
    # without --chatter there is no chatter figure; a bad file is refused in Chinese
    assert await cli(settings, "eval", "routing", "--questions", str(QUESTIONS)) == 0
    assert "judged chatter" not in capsys.readouterr().out
    bad = write_lines(tmp_path / "bad.jsonl", ['{"id": "q1", "text": "x"}'])
    assert await cli(settings, "eval", "routing", "--questions", str(bad)) == 2
    assert "缺少 expect" in capsys.readouterr().err


def test_route_json_contract_and_stdin(tmp_path: Path) -> None:
    assert run(["studios", "import", str(ROSTER)], tmp_path).returncode == 0
    history = write_lines(tmp_path / "h.jsonl", [HISTORY[0]])
    assert run(["problems", "import", str(history)], tmp_path).returncode == 0
    result = run(["route", SHIELD, "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    data = json.loads(line)
    assert set(data) == {"is_problem", "studios", "similar"} and data["is_problem"] is True
    assert len(data["studios"]) == 3 and data["studios"][0]["id"] == "tunnel-shield"
    for studio in data["studios"]:
        assert set(studio) == {"id", "name", "score", "matched"}
        assert isinstance(studio["score"], float) and 0 <= studio["score"] <= 1
        assert all(isinstance(t, str) for t in studio["matched"])
    scores = [s["score"] for s in data["studios"]]
    assert scores == sorted(scores, reverse=True) and "注浆" in "".join(data["studios"][0]["matched"])
    assert data["similar"] == [] or {"id", "ref", "score", "answer"} == set(data["similar"][0])
    same = json.loads(run(["route", "盾构壁后注浆压力怎么定？", "--json"], tmp_path).stdout)
    assert [(s["id"], s["ref"], s["answer"]) for s in same["similar"]] == [(1, "h001", "按覆土计算")]
    # --stdin: one object per line, in order
    texts = ["谢谢大家", SHIELD, "接触网吊弦安装后导高偏差超标怎么办？", "[强]"]
    batch = run(["route", "--stdin", "--json"], tmp_path, stdin="\n".join(texts) + "\n")
    assert batch.returncode == 0, batch.stderr
    objects = [json.loads(x) for x in batch.stdout.splitlines()]
    assert [o["is_problem"] for o in objects] == [False, True, True, False]
    assert [(s["id"], s["matched"]) for s in objects[1]["studios"]] == [
        (s["id"], s["matched"]) for s in data["studios"]
    ]
    assert [s["score"] for s in objects[1]["studios"]] == pytest.approx(scores, abs=1e-3)
    assert objects[2]["studios"][0]["id"] == "ocs-catenary"
    # human-readable without --json; neither text nor --stdin is refused
    assert "1. tunnel-shield" in run(["route", SHIELD], tmp_path).stdout
    refused = run(["route"], tmp_path)
    assert refused.returncode == 2 and "--stdin" in refused.stderr
