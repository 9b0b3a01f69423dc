"""Conversation tests for events: announcing in one line of Chinese, refusals, listing, details, sign-ups with
a waiting list, cancellation and moves (attendees and groups are told)."""

from __future__ import annotations

from bot.app import BotApp
from bot.core.messages import Target, TargetKind
from bot.handlers.activities import parse_add
from bot.services.activities.service import ActivityService
from bot.store.activities import ReminderStatus
from tests.conftest import ADMIN
from tests.harness import Chat

LEAD = "mushandong"  # 隧道联盟 lead in the example roster
OTHER_LEAD = "gaojiaqiao"  # 桥梁联盟 lead
TUNNEL_GROUP = Target(TargetKind.CONSOLE, "隧道联盟群")


def group_texts(chat: Chat, target: Target = TUNNEL_GROUP) -> list[str]:
    return [d.text for d in chat.sender.deliveries if d.target == target]


async def add_lecture(chat: Chat, extra: str = "", when: str = "下周三下午3点") -> str:
    return await chat.say(LEAD, f"/活动 添加 讲座 {when} 盾构施工新技术 {extra}".strip())


def test_parse_add_options_anywhere() -> None:
    request = parse_add("讲座 下周三下午3点 盾构 新技术 @隧道 地点 郑州 会议中心 名额 50")
    assert request.type.value == "讲座"
    assert request.body == "下周三下午3点 盾构 新技术"
    assert (request.alliance, request.place, request.capacity) == ("隧道", "郑州 会议中心", 50)
    request = parse_add("site-visit 12月5日 9:30 万里行 名额 30 地点 京雄城际")
    assert (request.type.value, request.place, request.capacity) == ("观摩", "京雄城际", 30)
    assert parse_add("大脑汇 明天14:00 头脑风暴").type.value == "研讨"


async def test_lead_announces_event_in_one_line(chat: Chat) -> None:
    reply = await add_lecture(chat, "地点 郑州会议中心 名额 50")
    assert "已添加活动 #1：讲座（大讲堂）「盾构施工新技术」" in reply
    assert "时间：2026年12月2日（星期三）15:00" in reply  # echoed in full: date, weekday, time
    assert "联盟：隧道联盟" in reply and "地点：郑州会议中心" in reply and "名额：50 人" in reply
    assert "11月25日 15:00、12月1日 15:00、12月2日 13:00 发到联盟群" in reply
    announced = group_texts(chat)
    assert len(announced) == 1 and "【新活动】" in announced[0] and "/报名 1" in announced[0]
    # the other alliances' groups are not bothered with a tunnel event
    assert group_texts(chat, Target(TargetKind.CONSOLE, "桥梁联盟群")) == []


async def test_english_command_and_aliases(chat: Chat) -> None:
    reply = await chat.say(LEAD, "/event add annual 2026-12-05 09:30 隧道联盟年会")
    assert "年会「隧道联盟年会」" in reply and "2026年12月5日（星期六）09:30" in reply
    reply = await chat.say(LEAD, "/活动 新增 培训 12月5日 年度安全培训")
    assert "2026年12月5日（星期六）09:00" in reply and "未写具体时刻，按 9:00 安排" in reply


async def test_add_refusals_are_helpful(chat: Chat) -> None:
    past = await chat.say(LEAD, "/活动 添加 讲座 昨天下午3点 过去的讲座")
    assert "已经过去" in past and "下周三下午3点" in past
    unreadable = await chat.say(LEAD, "/活动 添加 讲座 改天再说 某讲座")
    assert "没有找到时间" in unreadable and "12月5日 9:30" in unreadable
    assert "不认识的活动类型「茶话会」" in await chat.say(LEAD, "/活动 添加 茶话会 明天14:00 喝茶")
    assert "请在时间后面写上活动标题" in await chat.say(LEAD, "/活动 添加 讲座 明天14:00")
    assert "名额应在 1 到" in await chat.say(LEAD, "/活动 添加 讲座 明天14:00 讲座 名额 0")
    assert "用法：/活动 添加" in await chat.say(LEAD, "/活动 添加")
    member = await chat.say("someone", "/活动 添加 讲座 明天14:00 讲座")
    assert "需要「联盟负责人」及以上权限" in member and "您当前是「成员」" in member
    assert "只能为自己牵头的联盟" in await chat.say(LEAD, "/活动 添加 讲座 明天14:00 讲座 @桥梁")
    assert "没有找到联盟「海洋」" in await chat.say(ADMIN, "/活动 添加 讲座 明天14:00 讲座 @海洋")
    assert "不认识的子命令「删除」" in await chat.say(LEAD, "/活动 删除 1")
    assert "近期没有安排活动" in await chat.say("someone", "/活动列表")


async def test_admin_adds_joint_event_for_every_alliance(chat: Chat) -> None:
    reply = await chat.say(ADMIN, "/活动 添加 会议 12月10日 14:00 联盟负责人会议")
    assert "联盟：全体联盟" in reply
    for name in ("桥梁", "隧道", "城轨", "四电"):
        assert len(group_texts(chat, Target(TargetKind.CONSOLE, f"{name}联盟群"))) == 1
    reply = await chat.say(ADMIN, "/活动 添加 评鉴 12月11日 9:00 评鉴团 @桥梁")
    assert "联盟：桥梁联盟" in reply


async def test_listing_and_details(chat: Chat) -> None:
    await add_lecture(chat, "名额 30")
    await chat.say(OTHER_LEAD, "/活动 添加 观摩 12月8日 9:00 转体桥现场观摩 地点 石家庄")
    await chat.say(ADMIN, "/活动 添加 会议 12月10日 14:00 负责人会议")
    listing = await chat.say("someone", "/events")
    assert listing.index("#1 ") < listing.index("#2 ") < listing.index("#3 ")
    assert (
        "#1 2026年12月2日（星期三）15:00 讲座（大讲堂）「盾构施工新技术」· 隧道联盟 · 已报名 0/30" in listing
    )
    tunnel = await chat.say("someone", "/活动列表 隧道")
    assert "#1 " in tunnel and "#3 " in tunnel and "#2 " not in tunnel  # its own and joint events
    assert "没有找到联盟「海洋」" in await chat.say("someone", "/活动列表 海洋")
    await chat.say("chenjuejin", "/报名 1")
    details = await chat.say("someone", "/活动 1")
    assert "#1 讲座（大讲堂）「盾构施工新技术」" in details
    assert "发布者：穆山洞" in details and "已报名（1/30）：陈掘进" in details
    assert "日历：http://127.0.0.1:8080/calendar/event/1.ics" in details
    assert "订阅联盟日历：http://127.0.0.1:8080/calendar/tunnel.ics" in details
    assert "没有编号为 99 的活动" in await chat.say("someone", "/活动 99")
    assert "请写活动编号" in await chat.say("someone", "/报名 abc")


async def test_waiting_list_is_promoted_automatically(chat: Chat, bot: BotApp) -> None:
    await add_lecture(chat, "名额 2")
    assert "报名成功" in await chat.say("u1", "/报名 1")
    assert "报名成功" in await chat.say("u2", "/join 1")
    assert "您已经报名了" in await chat.say("u2", "/报名 1")
    full = await chat.say("u3", "/报名 1")
    assert "名额（2 人）已满" in full and "候补名单，排第 1 位" in full
    assert "排第 2 位" in await chat.say("u4", "/报名 1")
    assert "排第 2 位" in await chat.say("u4", "/报名 #1")
    details = await chat.say("someone", "/活动 1")
    assert "已报名（2/2）：u1、u2" in details and "候补（2）：1. u3、2. u4" in details
    left = await chat.say("u1", "/取消报名 1")
    assert "已取消报名" in left and "由候补第一位递补" in left
    assert any("【候补递补】" in t and "/取消报名 1" in t for t in chat.to_user("u3"))
    assert chat.to_user("u4") == []
    details = await chat.say("someone", "/活动 1")
    assert "已报名（2/2）：u2、u3" in details and "候补（1）：1. u4" in details
    # the promoted attendee gets the personal reminder; the one who left no longer does
    service = bot.runtime.feature(ActivityService)
    targets = {r.target for r in await service.repo.pending_reminders() if r.kind.startswith("attendee:")}
    assert targets == {"user:u2", "user:u3"}
    assert "已退出" in await chat.say("u4", "/leave 1")
    assert "您没有报名" in await chat.say("u4", "/leave 1")
    assert "用法：/取消报名" in await chat.say("u4", "/leave")


async def test_cancel_tells_attendees_and_groups(chat: Chat, bot: BotApp) -> None:
    await add_lecture(chat, "名额 1")
    await chat.say("u1", "/报名 1")
    await chat.say("u2", "/报名 1")  # waiting list
    assert "只有活动的发布者" in await chat.say(OTHER_LEAD, "/活动 取消 1")
    assert "需要「联盟负责人」" in await chat.say("u1", "/活动 取消 1")
    reply = await chat.say(LEAD, "/活动 取消 1 专家临时出差")
    assert "已取消活动 #1" in reply and "2 位报名者" in reply
    for user in ("u1", "u2"):
        (notice,) = [t for t in chat.to_user(user) if "【活动取消】" in t]
        assert "原因：专家临时出差" in notice and "2026年12月2日（星期三）15:00" in notice
    assert any("【活动取消】" in t for t in group_texts(chat))
    service = bot.runtime.feature(ActivityService)
    statuses = {r.status for r in await service.repo.reminders_of(1)}
    assert statuses == {ReminderStatus.CANCELLED.value}
    assert "已取消，无法报名" in await chat.say("u3", "/报名 1")
    assert "已经取消过了" in await chat.say(LEAD, "/活动 取消 1")
    assert "（已取消）" in await chat.say("someone", "/活动 1")
    assert "近期没有安排活动" in await chat.say("someone", "/活动列表")


async def test_move_tells_attendees_and_groups_and_replans(chat: Chat, bot: BotApp) -> None:
    await add_lecture(chat)
    await chat.say("u1", "/报名 1")
    reply = await chat.say(LEAD, "/活动 改期 1 12月9日 14:00")
    assert "原定：2026年12月2日（星期三）15:00" in reply and "改为：2026年12月9日（星期三）14:00" in reply
    assert "12月2日 14:00、12月8日 14:00、12月9日 12:00 发到联盟群" in reply
    (notice,) = [t for t in chat.to_user("u1") if "【活动改期】" in t]
    assert "改为：2026年12月9日（星期三）14:00" in notice
    assert any("【活动改期】" in t for t in group_texts(chat))
    service = bot.runtime.feature(ActivityService)
    pending = await service.repo.pending_reminders()
    assert {r.sequence for r in pending} == {1}
    assert {(r.kind, service.local(r.due).strftime("%m-%d %H:%M")) for r in pending} == {
        ("group:7d", "12-02 14:00"),
        ("group:1d", "12-08 14:00"),
        ("group:2h", "12-09 12:00"),
        ("attendee:1d", "12-08 14:00"),
    }
    assert "已经过去" in await chat.say(LEAD, "/活动 改期 1 昨天下午3点")
    assert "没有改动" in await chat.say(LEAD, "/活动 改期 1 12月9日 14:00")
    assert "请写活动编号和新时间" in await chat.say(LEAD, "/活动 改期 1")
    assert "只有活动的发布者" in await chat.say(OTHER_LEAD, "/活动 改期 1 12月10日 14:00")
    assert "改为：2026年12月10日（星期四）14:00" in await chat.say(ADMIN, "/活动 改期 1 12月10日 14:00")


async def test_help_lists_event_commands(chat: Chat) -> None:
    member = await chat.say("someone", "/help")
    assert "【活动】" in member and "/活动列表（/events）" in member and "/报名（/join）" in member
    usage = await chat.say("someone", "/help event")
    assert "/活动 添加 类型 时间 标题" in usage


async def test_a_leads_only_meeting_is_told_to_the_leads_and_only_they_sign_up(chat: Chat) -> None:
    reply = await chat.say(LEAD, "/活动 添加 年会 下周三下午3点 隧道联盟理事会 对象 负责人 地点 3楼会议室")
    assert "对象：仅负责人" in reply and "已逐一私信通知" in reply, reply
    assert not group_texts(chat), "a leads-only meeting is not announced in the member group"
    # the tunnel studios' leads (T1..T3) hear of it directly; a bridge studio's lead does not
    assert any("隧道联盟理事会" in t and "对象：仅负责人" in t for t in chat.to_user("chenjuejin"))
    assert not any("隧道联盟理事会" in t for t in chat.to_user("xuanbining"))
    assert "面向仅负责人，您不在其中，无法报名" in await chat.say("foreman1", "/报名 1")
    assert "报名成功" in await chat.say("chenjuejin", "/报名 1")
    assert "对象：仅负责人" in await chat.say("foreman1", "/活动 1")


async def test_an_invited_list_by_name_or_account(chat: Chat) -> None:
    reply = await chat.say(LEAD, "/活动 添加 大脑汇 下周三下午3点 盾构难题会诊 邀请 陈掘进、shibaopo")
    assert "对象：受邀人员（2 人" in reply, reply
    assert any("盾构难题会诊" in t for t in chat.to_user("chenjuejin"))
    assert any("盾构难题会诊" in t for t in chat.to_user("shibaopo"))
    assert not group_texts(chat)
    assert "无法报名" in await chat.say("fangshuiqing", "/报名 1")
    assert "报名成功" in await chat.say("shibaopo", "/报名 1")
    assert "花名册里没有找到「张三」" in await chat.say(LEAD, "/活动 添加 大脑汇 下周四15:00 另一会 邀请 张三")
    assert "「对象」请写 全体 或 负责人" in await chat.say(LEAD, "/活动 添加 讲座 下周四15:00 讲座 对象 路人")


async def test_an_open_activity_is_still_announced_in_the_group(chat: Chat) -> None:
    await add_lecture(chat, "对象 全体")
    assert any("盾构施工新技术" in t for t in group_texts(chat))
    assert "报名成功" in await chat.say("foreman1", "/报名 1")
