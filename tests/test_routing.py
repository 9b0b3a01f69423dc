"""Routing quality: the sample accuracy bar, a held-out roster, explanations, typos, history and re-asked questions.

The sample bar (issue 4) is checked on ``../shared/samples`` exactly as ``alliance-bot eval routing`` measures it.
Everything else uses data written for these tests: ``tests/routing_heldout/`` (a second roster of other studios
with other wording, and questions in two batches — ``questions_fresh.jsonl`` was written after the engine was
tuned on the first batch and never tuned on), and the paraphrases below, which are not copies of the sample.
``tests/test_routing_generalisation.py`` covers a third, smaller invented roster.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.routing import EvalResult, RoutingIndex, SolvedProblem, StudioDoc, evaluate, judge
from bot.routing.evaluation import read_jsonl, studios_from_yaml
from bot.routing.text import analyse, normalize
from bot.routing.vocabulary import default_vocabulary
from tests.harness import SHARED

SAMPLES = SHARED / "samples"
HELDOUT = Path(__file__).resolve().parent / "routing_heldout"


def _load(directory: Path, name: str) -> list[dict[str, Any]]:
    return list(read_jsonl(directory / name))


@pytest.fixture(scope="module")
def sample_roster() -> list[StudioDoc]:
    """The development roster of the shared samples."""
    return studios_from_yaml(SAMPLES / "studios.yaml")


@pytest.fixture(scope="module")
def sample_index(sample_roster: list[StudioDoc]) -> RoutingIndex:
    """The sample roster, no history."""
    return RoutingIndex(sample_roster)


@pytest.fixture(scope="module")
def sample_questions() -> list[dict[str, Any]]:
    """The labelled sample questions."""
    return _load(SAMPLES, "questions.jsonl")


@pytest.fixture(scope="module")
def heldout_roster() -> list[StudioDoc]:
    """The held-out roster (25 studios, pinyin alliance ids, non-technical studio types among them)."""
    return studios_from_yaml(HELDOUT / "studios.yaml")


# --- the accuracy bar --------------------------------------------------------------------------------------


def test_sample_accuracy_meets_the_bar(
    sample_index: RoutingIndex, sample_questions: list[dict[str, Any]]
) -> None:
    """From the roster alone: top-1 ≥ 0.90, top-3 ≥ 0.98; ≥ 0.97 of chatter and of questions judged right."""
    result = evaluate(sample_index, sample_questions, _load(SAMPLES, "chatter.jsonl"))
    print(f"\nsample: {result}")
    assert result.questions >= 50 and result.chatter >= 10
    assert result.top1 >= 0.90
    assert result.top3 >= 0.98
    assert result.judged_chatter is not None and result.judged_chatter >= 0.97
    assert result.judged_problem >= 0.97


@pytest.mark.parametrize(
    ("questions", "chatter"),
    [("questions.jsonl", "chatter.jsonl"), ("questions_fresh.jsonl", "chatter_fresh.jsonl")],
)
def test_heldout_roster_accuracy(heldout_roster: list[StudioDoc], questions: str, chatter: str) -> None:
    """Another roster, other wording: the engine is not fitted to the sample's studios or phrasing."""
    result = evaluate(RoutingIndex(heldout_roster), _load(HELDOUT, questions), _load(HELDOUT, chatter))
    print(f"\nheld-out {questions}: {result}")
    assert result.questions >= 40
    assert result.top1 >= 0.90
    assert result.top3 >= 0.97
    assert result.judged_problem >= 0.95
    assert result.judged_chatter is not None and result.judged_chatter >= 0.95


def test_ranking_fills_the_top_three_and_honours_exclude(sample_index: RoutingIndex) -> None:
    """Always three studios when the roster has three, best first, scores in [0, 1]; excluded studios skipped."""
    ranked = sample_index.rank("盾构推进时土仓压力波动大", limit=3)
    assert ranked[0].id == "tunnel-shield"
    assert len(ranked) == 3 and len({m.id for m in ranked}) == 3
    assert all(0.0 <= m.score <= 1.0 for m in ranked)
    assert [m.score for m in ranked] == sorted((m.score for m in ranked), reverse=True)
    unrelated = sample_index.rank("今天天气不错", limit=3)
    assert len(unrelated) == 3  # nothing matches, the roster still fills the list
    rest = sample_index.rank("盾构推进时土仓压力波动大", limit=3, exclude={"tunnel-shield"})
    assert "tunnel-shield" not in {m.id for m in rest} and len(rest) == 3


# --- explanations ------------------------------------------------------------------------------------------


def _concepts(text: str) -> set[str]:
    vocab = default_vocabulary()
    return {c for h in analyse(text).hits for c in vocab.concepts_of.get(h.term, ())}


def _related(term: str, text: str) -> bool:
    """``term`` occurs in ``text`` (as written, as a canonical form, or as one of its words), or is a vocabulary
    term of a concept ``text`` mentions; a variant counts as its canonical term."""
    analysis = analyse(text)
    canonical = default_vocabulary().canon(term)  # 盾尾钢丝刷 as the user spelled it is the vocabulary's 盾尾刷
    if any(t in analysis.normalized or t in analysis.words or t in analysis.terms for t in {term, canonical}):
        return True
    return bool(set(default_vocabulary().concepts_of.get(canonical, ())) & _concepts(text))


def test_explanations_are_matched_terms_of_question_and_studio(
    sample_index: RoutingIndex, sample_roster: list[StudioDoc], sample_questions: list[dict[str, Any]]
) -> None:
    """Each recommendation names what matched: terms found both in the question and in the studio's roster."""
    roster_text = {s.id: " ".join((s.name, *s.expertise, s.description)) for s in sample_roster}
    unrelated: list[tuple[str, str, str]] = []
    for question in sample_questions:
        ranked = sample_index.rank(question["text"], limit=3)
        top = ranked[0]
        assert top.matched, f"no explanation for {question['id']}"
        assert len(top.matched) <= 5
        for match in ranked:
            assert len(set(match.matched)) == len(match.matched)
            for term in match.matched:
                if not (_related(term, question["text"]) and _related(term, roster_text[match.id])):
                    unrelated.append((question["id"], match.id, term))
    assert not unrelated


def test_explanation_prefers_the_studios_term_closest_to_the_question(sample_index: RoutingIndex) -> None:
    """A concept match is explained with the studio's own term nearest to what was asked, not any term."""
    [top] = sample_index.rank("龙门吊啃轨很严重", limit=1)
    assert top.id == "bridge-hoist" and "龙门吊" in top.matched  # as written, not the vocabulary's 门吊
    [top] = sample_index.rank("斜拉索索力调完又变了", limit=1)
    assert top.id == "bridge-cable" and top.matched[0] in {"斜拉索", "索力调整"}


# --- typos and colloquial wording ------------------------------------------------------------------------------

# (with a typo or site slang, the same question written properly, expected studio)
TYPOS = [
    ("盾钩机土仓压力老是掉，地表沉了", "盾构机土仓压力老是掉，地表沉了", "tunnel-shield"),
    ("接处网坠陀串卡住了，线都松了", "接触网坠砣串卡住了，线都松了", "ocs-catenary"),
    ("转则机扳不动，表示不对", "转辙机扳不动，表示不对", "signal-comm"),
    ("衬彻台车拆模后拱顶有空洞", "衬砌台车拆模后拱顶有空洞", "tunnel-lining"),
    ("架侨机过孔时前支腿油缸不同步", "架桥机过孔时前支腿油缸不同步", "bridge-hoist"),
    ("主变油色普有乙炔", "主变油色谱有乙炔", "power-supply"),
    ("写专利交低书有啥讲究", "写专利交底书有啥讲究", "innov-award"),
    ("斜拉锁索力调完又变了", "斜拉索索力调完又变了", "bridge-cable"),
]
COLLOQUIAL = [
    ("砼承台内外温差太大了咋整", "bridge-found"),
    ("弓子过电分相那里打火", "ocs-catenary"),
    ("道岔区段老是红光带，车都走了", "signal-comm"),
    ("螺机喷涌厉害，渣土稀得跟水一样", "tunnel-shield"),
    ("喷浆后拱架之间开裂掉块", "tunnel-blast"),
    ("管片上漂了，有几环还在往上走", "tunnel-shield"),
    ("刀盘上的滚刀偏磨好几把了", "tunnel-machine"),
    ("基坑边上的老楼裂缝变大了，监测也报警", "metro-pit"),
    ("钢支撑轴力掉了一半，是不是活络头松了", "metro-pit"),
    ("cp3点被压了，精调咋弄", "track-slab"),
    ("龙门吊啃轨很严重", "bridge-hoist"),
    ("满堂支架预压沉得厉害，要不要加密", "bridge-temp"),
    ("隧道塌方了，掌子面往下掉石头", "tunnel-blast"),
    ("开关柜里有放电声，局放测出来偏大", "power-supply"),
    ("gsmr信号弱，车载老掉线", "signal-comm"),
    ("无缝线路锁定轨温偏低，要不要重新放散", "track-slab"),
]


@pytest.mark.parametrize(("typo", "proper", "expect"), TYPOS, ids=[t[0] for t in TYPOS])
def test_typos_route_like_the_proper_spelling(
    sample_index: RoutingIndex, typo: str, proper: str, expect: str
) -> None:
    """A one-character typo of a domain term still reaches the studio the proper spelling reaches."""
    assert sample_index.rank(proper, limit=1)[0].id == expect
    [top] = sample_index.rank(typo, limit=1)
    assert top.id == expect
    assert top.matched
    assert judge(typo).is_problem


@pytest.mark.parametrize(("text", "expect"), COLLOQUIAL, ids=[c[0] for c in COLLOQUIAL])
def test_colloquial_questions_route(sample_index: RoutingIndex, text: str, expect: str) -> None:
    """Site slang, abbreviations and half sentences reach the right studio and are judged problems."""
    assert sample_index.rank(text, limit=1)[0].id == expect
    assert judge(text).is_problem


# --- history -----------------------------------------------------------------------------------------------


def _solved(questions: list[dict[str, Any]], start: int = 1) -> list[SolvedProblem]:
    return [
        SolvedProblem(
            id=start + i, ref=q["id"], studio_id=q["expect"], text=q["text"], answer=f"答复{q['id']}"
        )
        for i, q in enumerate(questions)
    ]


def _with_history(
    roster: list[StudioDoc], train: list[dict[str, Any]], test: list[dict[str, Any]]
) -> tuple[EvalResult, EvalResult]:
    index = RoutingIndex(roster)
    before = evaluate(index, test)
    for problem in _solved(train):
        index.add_solved(problem)
    assert len(index) == len(train)
    return before, evaluate(index, test)


def test_history_improves_routing_on_heldout_questions(heldout_roster: list[StudioDoc]) -> None:
    """A thin roster (names only) routes badly; the studios' solved problems make it route well.

    Trained on the first held-out batch, measured on the second batch (different questions, different words).
    """
    thin = [replace(s, expertise=(), description="") for s in heldout_roster]
    train = _load(HELDOUT, "questions.jsonl")
    test = _load(HELDOUT, "questions_fresh.jsonl")
    before, after = _with_history(thin, train, test)
    print(
        f"\nnames-only roster: top-1 {before.top1:.3f} → {after.top1:.3f}, top-3 {before.top3:.3f} → {after.top3:.3f}"
    )
    assert after.top1 >= before.top1 + 0.10
    assert after.top3 >= before.top3
    assert after.top1 >= 0.90


def test_history_grows_with_more_solved_problems(heldout_roster: list[StudioDoc]) -> None:
    """More history, better routing: a tenth of the history helps less than all of it."""
    anonymous = [
        replace(s, name=f"第{i}工作室", expertise=(), description="") for i, s in enumerate(heldout_roster)
    ]
    train = _load(HELDOUT, "questions.jsonl")
    test = _load(HELDOUT, "questions_fresh.jsonl")
    none, little = _with_history(anonymous, train[::10], test)
    _, full = _with_history(anonymous, train, test)
    print(f"\nanonymous roster: top-1 {none.top1:.3f} → {little.top1:.3f} (1/10 history) → {full.top1:.3f}")
    assert none.top1 < little.top1 < full.top1
    assert full.top1 >= 0.85


def test_history_does_not_hurt_a_good_roster(heldout_roster: list[StudioDoc]) -> None:
    """With a full roster, history keeps routing at least as good (roster evidence still counts)."""
    before, after = _with_history(
        heldout_roster, _load(HELDOUT, "questions.jsonl"), _load(HELDOUT, "questions_fresh.jsonl")
    )
    assert after.top1 >= before.top1 - 0.03
    assert after.top3 >= before.top3 - 0.03


def test_history_teaches_words_no_vocabulary_has(sample_roster: list[StudioDoc]) -> None:
    """A machine model and a project nickname only the solved problems mention still route after a few answers."""
    index = RoutingIndex(sample_roster)
    query = "JQ900A又报E07了，老样子"
    assert index.rank(query, limit=1)[0].id != "bridge-hoist"
    history = [
        "JQ900A过孔前自检报E07，液压站压力低",
        "JQ900A喂梁时天车E07报警",
        "那台JQ900A的E07故障复位不了",
    ]
    for i, text in enumerate(history, 1):
        index.add_solved(SolvedProblem(i, None, "bridge-hoist", text, "检查液压站"))
    [top] = index.rank(query, limit=1)
    assert top.id == "bridge-hoist"
    assert "jq900a" in top.matched or "e07" in top.matched


# --- re-asked questions ------------------------------------------------------------------------------------

# (the same question in other words, the sample question it restates)
REWORDED = [
    ("架桥机过孔的时候中间那个支腿油缸不同步，一直报警停机，先检查哪", "q001"),
    ("盾构壁后注浆压力一般取多少，覆土十米左右的粉细砂地层", "q002"),
    ("35kV冷缩终端头耐压后应力锥处发热", "q014"),
    ("履带吊主臂82度的时候力矩限制器老报警，其实荷载才六成", "q022"),
    ("变电所接地电阻测了1.2欧，设计要0.5欧，怎么降下来", "q037"),
    ("光缆熔接损耗有0.15dB，是不是熔接机有问题", "q048"),
    ("二衬拱顶厚度不足，钻孔检查只有设计厚度的七成，如何整改", "q070"),
    ("TBM皮带机往一侧跑偏，托辊调整了也不行", "q026"),
    ("坠砣串卡在限制架里了，晚上降温张力不足导线松弛", "q068"),
    ("主驱动齿轮箱油温到85度报警了，冷却水流量没问题", "q062"),
]
# questions about something else entirely, and about the same part but a different problem
UNRELATED = [
    "钢箱梁顶推用的滑块多久换一次",
    "隧道洞口截水沟怎么设置",
    "接触网腕臂预配用什么软件",
    "专利和论文可以用同一个成果吗",
    "壁后注浆浆液凝结时间怎么调",
    "钢筋笼下放时碰到孔壁塌了",
    "接地网的扁钢焊接长度要求多少",
    "光缆熔接机怎么保养",
]


@pytest.fixture(scope="module")
def history_index(sample_roster: list[StudioDoc], sample_questions: list[dict[str, Any]]) -> RoutingIndex:
    """The sample roster with every sample question as a solved problem."""
    return RoutingIndex(sample_roster, _solved(sample_questions))


def test_similar_finds_a_solved_problem_asked_in_other_words(history_index: RoutingIndex) -> None:
    """A restated question surfaces the earlier problem (best first) with its answer."""
    found = 0
    for text, ref in REWORDED:
        matches = history_index.similar(text, limit=3)
        assert all(m.ref == ref for m in matches[:1]), (text, matches)
        if matches and matches[0].ref == ref:
            found += 1
            assert matches[0].answer == f"答复{ref}"
            assert 0.0 < matches[0].score <= 1.0
    assert found >= 0.8 * len(REWORDED)


@pytest.mark.parametrize("text", UNRELATED)
def test_similar_ignores_other_questions(history_index: RoutingIndex, text: str) -> None:
    """Another question, even about the same equipment, is not offered as the same question."""
    assert history_index.similar(text) == []


def test_similar_matches_a_verbatim_repeat(
    history_index: RoutingIndex, sample_questions: list[dict[str, Any]]
) -> None:
    """Every solved problem is found when asked again word for word (with chat noise around it)."""
    for question in sample_questions:
        matches = history_index.similar(f"@机器人 {question['text']} [捂脸]", limit=1)
        assert matches and matches[0].ref == question["id"], question["id"]


def test_add_and_remove_solved_round_trip(sample_roster: list[StudioDoc]) -> None:
    """Adding a solved problem adds its evidence; removing it restores the index exactly."""
    index = RoutingIndex(sample_roster)
    query = "ZX-7型液压夹轨器松不开"
    baseline = {m.id: m.score for m in index.rank(query, limit=len(sample_roster))}
    assert index.similar(query) == [] and len(index) == 0

    problem = SolvedProblem(41, "h041", "track-slab", "ZX-7型液压夹轨器松不开，油路检查正常", "更换电磁阀")
    index.add_solved(problem)
    assert len(index) == 1
    assert index.rank(query, limit=1)[0].id == "track-slab"
    [match] = index.similar("ZX-7型液压夹轨器松不开，油路检查过了")
    assert (match.id, match.ref, match.studio_id, match.answer) == (41, "h041", "track-slab", "更换电磁阀")

    # the same id again replaces the problem: its evidence moves to the new studio
    index.add_solved(replace(problem, studio_id="bridge-hoist"))
    assert len(index) == 1
    assert index.rank(query, limit=1)[0].id == "bridge-hoist"
    assert index.similar("ZX-7型液压夹轨器松不开，油路检查过了")[0].studio_id == "bridge-hoist"

    index.remove_solved(41)
    index.remove_solved(41)  # unknown ids are ignored
    index.remove_solved(999)
    assert len(index) == 0
    assert index.similar("ZX-7型液压夹轨器松不开，油路检查过了") == []
    assert {m.id: m.score for m in index.rank(query, limit=len(sample_roster))} == baseline


def test_removed_problems_stay_gone_after_many_changes(sample_roster: list[StudioDoc]) -> None:
    """Churn (many adds and removes, which compacts the re-ask index) leaves exactly the live problems."""
    index = RoutingIndex(sample_roster)
    texts = [f"{i}号墩钢护筒第{i}节焊缝开裂" for i in range(1, 1501)]
    for i, text in enumerate(texts, 1):
        index.add_solved(SolvedProblem(i, None, "bridge-found", text, f"答{i}"))
    for i in range(1, 1501, 2):
        index.remove_solved(i)
    assert len(index) == 750
    kept = index.similar(texts[9], limit=1)  # problem 10 (even) is live
    assert kept and kept[0].id == 10
    gone = index.similar(texts[10], limit=5)  # problem 11 was removed
    assert all(m.id % 2 == 0 for m in gone)


def test_upsert_studio_changes_routing(sample_roster: list[StudioDoc]) -> None:
    """A new studio is routed to as soon as it is upserted; editing its expertise takes effect at once."""
    index = RoutingIndex(sample_roster)
    query = "屏蔽门门机梁安装后开关门卡顿"
    assert index.rank(query, limit=1)[0].id != "mep"
    studio = StudioDoc(
        "mep", "车站机电工作室", "urban", ("屏蔽门安装", "通风空调"), "地铁车站机电设备安装调试。"
    )
    index.upsert_studio(studio)
    assert index.rank(query, limit=1)[0].id == "mep"
    index.upsert_studio(
        replace(studio, name="钢筋加工工作室", expertise=("钢筋加工",), description="钢筋加工厂管理。")
    )
    assert index.rank(query, limit=1)[0].id != "mep"


def test_normalize_strips_chat_noise() -> None:
    """Mentions, stickers, emoji and links do not reach the analysis."""
    assert normalize("@罗工 盾构姿态跑偏了[捂脸]😂 https://x.cn/a") == "盾构姿态跑偏了"


# --- the problem judge -----------------------------------------------------------------------------------------

# questions wrapped in pleasantries or cut short, as typed on site
TERSE_OR_POLITE_QUESTIONS = [
    "谢谢各位！再请教一下，洞门密封用什么材料好",
    "大家好，我们管片上浮了30mm，怎么控制",
    "早上好，昨晚接触网跳闸了三次",
    "辛苦帮忙看下，这个钢支撑轴力一直在掉",
    "收到。另外承台测温发现中心温度78度，超了吗",
    "好的，那转辙机缺口还是超标怎么办",
    "祝贺之余请教个问题：合龙段什么时候浇最好",
    "盾构机过站怎么做",
    "张拉完多久能压浆",
    "吊弦线夹松了",
    "二衬开裂",
    "桩基声测管堵了",
    "计轴老是复位不了",
    "信号机灯丝断丝报警",
    "有没有人做过钢弹簧浮置板",
]
# chatter that mentions the trade: news, thanks for a talk, logistics, follow-ups on solved problems
CHATTER_WITH_TERMS = [
    "这次大讲堂讲得太好了，盾构换刀那段受益匪浅",
    "下午三点盾构工作室开会",
    "架桥机的维保记录表谁有，发我一份",
    "恭喜咱们的接触网QC课题拿了一等奖",
    "晚上聚餐，隧道组的都来",
    "管片厂的车几点到",
    "今天的监测日报已经发群里了",
    "感谢，问题解决了，管片不再上浮了",
    "好的，按你说的把注浆压力调低了，效果不错",
    "@所有人 请各工作室于本周五前上报盾构施工安全隐患排查表",
    "【通知】关于开展2026年度QC成果评审的通知，详见附件",
    "转发：铁路桥梁施工技术规范（2025版）已发布",
    "盾构机今天到场了",
    "架桥机拼装完成，明天开始试吊",
    "本周隧道进尺120米，创新高",
    "分享一篇关于TBM卡机处理的文章 https://mp.weixin.qq.com/s/abc",
]
# progress news that turns into a problem is a problem again
PROGRESS_WITH_TROUBLE = [
    "架桥机拼装完成，试吊时主梁下挠超标",
    "今天开始掘进，推力一直上不去",
    "接触网开通了，但是受电弓过分相时打火",
    "GSM-R基站开通后越区切换掉话",
]


@pytest.mark.parametrize("text", TERSE_OR_POLITE_QUESTIONS)
def test_terse_or_polite_questions_are_problems(text: str) -> None:
    """A greeting or thanks in front of a question, or a five-character fault report, is still a problem."""
    assert judge(text).is_problem


@pytest.mark.parametrize("text", CHATTER_WITH_TERMS)
def test_chatter_with_domain_terms_is_not_a_problem(text: str) -> None:
    """Domain words alone do not make a problem: good news, thanks, meetings and follow-ups are chatter."""
    assert not judge(text).is_problem


@pytest.mark.parametrize("text", PROGRESS_WITH_TROUBLE)
def test_progress_news_with_a_fault_is_a_problem(text: str) -> None:
    """ "完成/开通/开始" is news only while nothing went wrong."""
    assert judge(text).is_problem


def test_domain_flavoured_chatter_file() -> None:
    """The held-out file of chatter that names the trade (盾构始发 congratulations, 架桥机 thanks, …)."""
    chatter = _load(HELDOUT, "chatter_domain.jsonl")
    quiet = sum(not judge(c["text"]).is_problem for c in chatter)
    assert len(chatter) >= 20
    assert quiet / len(chatter) >= 0.95


def test_a_new_studio_is_not_drowned_by_the_others_history(heldout_roster: list[StudioDoc]) -> None:
    """A studio that joined today (no solved problems) still gets the questions its roster entry clearly covers,
    although every other studio has a long record (each held-out problem solved twenty times over)."""
    cold = "C04"
    train = [q for q in _load(HELDOUT, "questions.jsonl") if q["expect"] != cold] * 20
    ours = [
        q
        for name in ("questions.jsonl", "questions_fresh.jsonl")
        for q in _load(HELDOUT, name)
        if q["expect"] == cold
    ]
    index = RoutingIndex(heldout_roster, _solved(train))
    result = evaluate(index, ours)
    assert result.questions >= 5
    assert result.top1 >= 0.8
    assert result.top3 == 1.0
