"""Is a group message a technical problem worth routing, or chatter (thanks, stickers, greetings, logistics)?

A pure, rule-based judge. Evidence for a problem: domain terms of the vocabulary (strong; generic ones such as
施工/质量 weak), question forms (怎么/如何/为什么/什么原因/请教/…/？) and fault descriptions (报警停机, 渗水,
开裂, 超限…). Evidence for chatter: acknowledgements, thanks, greetings and wishes, praise, laughter, and
meeting/training logistics. Short colloquial site problems still count because domain terms weigh heavily.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum

from bot.routing.text import Lexicon, default_lexicon, is_cjk, normalize
from bot.routing.vocabulary import GENERIC_TERMS

QUESTION_MARKERS = (
    "怎么",
    "怎样",
    "如何",
    "为什么",
    "为何",
    "什么原因",
    "什么",
    "啥原因",
    "原因是",
    "请教",
    "求助",
    "求教",
    "咨询",
    "请问",
    "咋",
    "啥",
    "能不能",
    "能否",
    "可不可以",
    "可以吗",
    "要不要",
    "需不需要",
    "是否",
    "有没有",
    "会不会",
    "是不是",
    "行不行",
    "多少",
    "多大",
    "多长",
    "多厚",
    "多深",
    "多久",
    "哪个",
    "哪些",
    "哪种",
    "哪里出",
    "什么问题",
    "什么情况",
    "怎么办",
    "如何处理",
    "怎么处理",
    "怎么弄",
    "怎么整",
    "怎么调",
    "怎么算",
    "还是",
    "吗",
    "么",
    "?",
    "有经验",
    "有没有经验",
    "帮忙看",
    "帮看",
    "支招",
    "给个建议",
    "该怎么",
)
FAULT_MARKERS = (
    "一直没",
    "还是没",
    "没反应",
    "没有反应",
    "报警",
    "停机",
    "故障",
    "跳闸",
    "渗水",
    "渗漏",
    "漏水",
    "漏浆",
    "涌水",
    "开裂",
    "裂缝",
    "裂了",
    "断裂",
    "超限",
    "超标",
    "超差",
    "偏差",
    "偏大",
    "偏小",
    "偏高",
    "偏低",
    "不够",
    "不足",
    "不合格",
    "不达标",
    "失败",
    "卡住",
    "卡死",
    "卡钻",
    "掉线",
    "掉话",
    "异响",
    "发热",
    "过热",
    "冒烟",
    "变形",
    "沉降",
    "下沉",
    "上浮",
    "塌",
    "坍",
    "脱落",
    "松动",
    "松了",
    "损坏",
    "破损",
    "烧坏",
    "磨损",
    "崩",
    "堵",
    "跑偏",
    "错位",
    "错台",
    "不收敛",
    "没收敛",
    "对不上",
    "不一致",
    "不出",
    "不进去",
    "不到位",
    "不稳",
    "抖动",
    "振动大",
    "压不住",
    "预警",
    "红色",
    "干扰",
    "超时",
    "占用",
    "拉弧",
    "刮伤",
    "刮破",
    "凹陷",
    "空洞",
    "脱空",
    "浑浊",
    "冲刷",
    "上不去",
    "生锈",
    "锈蚀",
    "起皮",
    "脱皮",
    "空鼓",
    "起砂",
    "掉块",
    "掉渣",
    "掉土",
    "冒泥",
    "冒水",
    "冒浆",
    "打火",
    "放电",
    "击穿",
    "闪断",
    "误报",
    "误动",
    "拒动",
    "异常",
    "不正常",
    "不正确",
    "不准",
    "不均匀",
    "不平",
    "不对",
    "没过",
    "卡阻",
    "卡机",
    "卡在",
    "撕裂",
    "断了",
    "堵了",
    "堵住",
    "漏风",
    "漏油",
    "漏气",
    "漏电",
    "压坏",
    "戳穿",
    "鼓包",
    "波动",
    "偏位",
    "偏了",
    "歪了",
    "超了",
    "红光带",
    "突然",
    "越来越",
)
THANKS = (
    "谢谢",
    "多谢",
    "感谢",
    "谢了",
    "谢啦",
    "辛苦",
    "受益匪浅",
    "受教",
    "学习了",
    "学到了",
    "thanks",
    "thx",
    "收获",
    "启发",
    "分享",
    "讲得",
    "受益",
    "点拨",
    "指点",
)
ACKS = (
    "收到",
    "好的",
    "好滴",
    "明白",
    "了解",
    "知道了",
    "看到了",
    "ok",
    "okay",
    "嗯嗯",
    "没问题",
    "可以的",
    "马上",
    "稍后",
    "跟进",
    "晚点回复",
    "在开会",
    "已阅",
    "同意",
    "赞同",
    "+1",
    "1",
)
# A follow-up saying an earlier problem is fixed ("问题解决了，管片不再上浮了"): feedback, not a new problem.
RESOLVED = ("解决了", "搞定了", "已解决", "已经解决", "恢复正常", "效果不错", "效果很好", "没问题了", "不再")
# A progress report ("架桥机拼装完成，明天开始试吊"): news from site, not a question, unless something went wrong.
_PROGRESS = re.compile(
    r"(?:完成|完工|到场|进场|开通|通车|投产|就位|到位|贯通)(?:了|啦|喽|[!！,，。]|$)|(?:今天|明天|本周|下周)(?:开始|完成)"
)
# Passing on reading matter ("分享一篇…文章", a link): not a question of the sender's.
SHARING = ("文章", "转发", "公众号", "推文", "视频号", "规范已发布", "已发布", "附件")
# About the chat itself, not the site: a file or link that will not open, a message not received.
CHAT_META = (
    "群里发",
    "群文件",
    "群公告",
    "文件打不开",
    "链接打不开",
    "图片打不开",
    "视频打不开",
    "看不了",
    "收不到消息",
    "发不出去",
)
# Someone taking a task on ("我来跟进"): an answer to a message, not a new problem, whatever its length.
COMMITMENTS = ("我来跟进", "我来处理", "我来对接", "过去看看", "我去看看", "我看看")
GREETINGS = (
    "早上好",
    "上午好",
    "中午好",
    "下午好",
    "晚上好",
    "大家好",
    "各位好",
    "你好",
    "您好",
    "早安",
    "晚安",
    "快乐",
    "新年",
    "元旦",
    "春节",
    "中秋",
    "国庆",
    "端午",
    "节日",
    "顺利",
    "恭喜",
    "祝贺",
    "祝",
    "生日",
    "欢迎",
    "加油",
    "真厉害",
    "太厉害了",
    "牛",
    "赞",
    "点赞",
    "棒",
    "优秀",
    "佩服",
    "威武",
    "漂亮",
    "好看",
    "真美",
    "帅",
    "喜大普奔",
    "圆满",
    "庆祝",
    "贺喜",
    "创新高",
    "新纪录",
    "破纪录",
)
LAUGHTER = ("哈哈", "呵呵", "嘿嘿", "嘻嘻", "233", "hhh", "笑死", "绝了", "表情包")
LOGISTICS = (
    "会议",
    "开会",
    "会议室",
    "会议号",
    "腾讯会议",
    "线上",
    "线下",
    "大讲堂",
    "讲堂",
    "讲座",
    "培训",
    "签到",
    "报名",
    "通知",
    "回放",
    "直播",
    "课件",
    "ppt",
    "群文件",
    "下载",
    "上传",
    "通讯录",
    "名片",
    "联系方式",
    "微信",
    "几点",
    "几号",
    "在哪",
    "哪里开",
    "改期",
    "延期",
    "推迟",
    "议程",
    "比武",
    "竞赛",
    "评选",
    "投票",
    "填报",
    "报送",
    "截止",
    "发我",
    "发一下",
    "转发",
    "链接",
    "吃饭",
    "聚餐",
    "放假",
    "值班",
    "请假",
    "车间",
    "班车",
    "合影",
    "照片",
    "参观",
    "观摩",
    "集合",
    "出发",
    "报到",
    "发布会",
    "年会",
    "总结",
    "交流会",
    "座谈",
    "颁奖",
    "怎么走",
    "怎么去",
    "周报",
    "月报",
    "食堂",
    "上报",
    "提交",
    "附件",
    "详见",
    "排查表",
    "汇总",
    "各工作室",
    "所有人",
)
# Logistics words that are also everyday technical words (凝结时间, 施工安排): they only veto a message that
# has no domain term at all.
WEAK_LOGISTICS = ("时间", "安排", "活动", "表格", "地点", "电话")
# Good news ("首架成功", not "没成功"), and clock times ("8点集合", "14:30", not "CP3点位").
_CELEBRATION = re.compile(r"(?<![没不未])成功|顺利(?:完成|贯通|始发|送电|合龙|通过)?")
_CLOCK = re.compile(r"(?<![a-z\d.])\d{1,2}(?:[:：]\d{2}|点(?:半|钟)?(?![位云阵状号数]))")
# An acknowledgement opening a longer message: "收到，…", "好的，…".
_ACK_OPENING = re.compile(r"^(?:收到|好的|好滴|明白|了解|ok|嗯嗯?)(?:[,，!！。 ]|$)")
_URL_IN_RAW = re.compile(r"https?://|www\.", re.IGNORECASE)
_PUNCT_ONLY = re.compile(r"^[\s\W_]*$")
# "够不够", "对不对", "合不合格": an A-not-A question.
_A_NOT_A = re.compile(r"([\u4e00-\u9fff])[不没]\1")
# A verb with a negated result/direction complement: "收不回来", "撑不住", "调不过来", "解锁不了", "注不进".
_FAILED_RESULT = re.compile(
    r"[\u4e00-\u9fff][不没](?:上|下|进|出|回|过|住|动|开|到|准|稳|牢|满|实|平|齐|够|了|对|正|紧|严|直|通|掉|来|去)"
)
# A measured quantity in engineering units (not clock times or dates): "20mm", "1.5MPa", "4欧", "38米", "20多mm",
# "十来个毫米".
_MEASURE = re.compile(
    r"(?:\d+(?:\.\d+)?|[一二两三四五六七八九十百千几]+)\s*(?:多|来|余)?个?\s*(?:mm|cm|km|m(?![a-z])|mpa|kpa|kn|kv|kva|kw|db|bar|ω|Ω|%|‰|°c|℃|t(?![a-z])|"
    r"毫米|厘米|公分|米|公里|吨|度|欧|伏|千伏|兆帕|环|根|榀|孔|跨|方)"
)
# A question about when something is due or happens ("检查表什么时候交", "那个区间什么时候贯通"): the calendar's
# business, not a site problem. Only the schedule verbs count, so "什么时候拆模" stays technical.
_SCHEDULE_QUESTION = re.compile(
    r"(?:什么时候|啥时候|几时|哪天|几号|何时|几点)(?:能|要|可以|才|开始|结束)?"
    r"(?:交|报|上报|提交|开会|开始|结束|截止|贯通|通车|开通|放假|上班|下班|集合|出发|发|到|开|举办|召开|报名)"
    r"|截止(?:时间|日期)|(?:在哪|哪个)(?:个)?(?:会议室|地方|房间|酒店)"
)
# A message addressed to the bot that says this much and is none of the above is taken as a site problem:
# people describe problems by their symptoms, in words no vocabulary lists.
SUBSTANTIVE_CJK = 10
# Words that put a message in the calendar rather than on site (used only to veto weak evidence).
_TEMPORAL = (
    "今天",
    "明天",
    "后天",
    "昨天",
    "上午",
    "下午",
    "晚上",
    "今晚",
    "晚点",
    "一会",
    "待会",
    "周末",
    "下周",
    "本周",
    "这周",
    "月底",
)


@dataclass(slots=True, frozen=True)
class Judgement:
    """Whether a message is a problem to route, and a short tag saying why (for logs)."""

    is_problem: bool
    reason: str


def _count(text: str, markers: tuple[str, ...]) -> int:
    return sum(1 for m in markers if m in text)


def judge(text: str, *, extra_terms: Collection[str] = (), lexicon: Lexicon | None = None) -> Judgement:
    """Judge one message; ``extra_terms`` (e.g. the roster's expertise phrases) count as domain terms."""
    norm = normalize(text)
    if not norm or _PUNCT_ONLY.match(norm):
        return Judgement(False, "empty/sticker")
    cjk = sum(1 for c in norm if is_cjk(c))
    lex = lexicon or default_lexicon()
    hits = lex.scan(norm)
    strong = {h.term for h in hits if h.term not in GENERIC_TERMS}
    weak = {h.term for h in hits if h.term in GENERIC_TERMS}
    strong.update(t for t in extra_terms if t and normalize(t) in norm)
    domain = len(strong) + 0.4 * len(weak)
    question = _count(norm, QUESTION_MARKERS) + len(_A_NOT_A.findall(norm))
    failed = len(_FAILED_RESULT.findall(norm))
    fault = _count(norm, FAULT_MARKERS) + failed
    measure = bool(_MEASURE.search(norm))
    social = (
        _count(norm, THANKS)
        + _count(norm, GREETINGS)
        + _count(norm, LAUGHTER)
        + len(_CELEBRATION.findall(norm))
    )
    ack = (_count(norm, ACKS) if cjk <= 8 else len(_ACK_OPENING.findall(norm))) + _count(norm, COMMITMENTS)
    logistics = (
        _count(norm, LOGISTICS)
        + (_count(norm, WEAK_LOGISTICS) if domain < 1 else 0)
        + len(_CLOCK.findall(norm))
    )
    numbers = bool(re.search(r"\d", norm))

    if cjk + len(re.findall(r"[a-z]+", norm)) <= 1:
        return Judgement(False, "too short")
    if _SCHEDULE_QUESTION.search(norm) and not fault:
        return Judgement(False, "schedule")
    if _count(norm, CHAT_META) and domain < 1:
        return Judgement(False, "chat")
    if logistics and not fault and not measure and (domain < 2 or not question):
        return Judgement(False, "logistics")
    if (social or ack) and not question and not fault:
        return Judgement(False, "social")
    if _count(norm, RESOLVED) and (social or ack) and not question:
        return Judgement(False, "resolved")
    if (_count(norm, SHARING) or _URL_IN_RAW.search(text)) and not question:
        return Judgement(False, "sharing")
    if _PROGRESS.search(norm) and not question and not fault and not measure:
        return Judgement(False, "progress")
    if _count(norm, LAUGHTER) and not question:
        return Judgement(False, "laughter")
    if domain >= 2:
        return Judgement(True, "domain")
    if domain >= 1 and (question or fault or numbers):
        return Judgement(True, "domain+question" if question else "domain+fault")
    if question and fault:
        return Judgement(True, "question+fault")
    if measure and (question or fault):
        return Judgement(True, "measure")
    if domain >= 1 and cjk >= 8 and not _count(norm, _TEMPORAL):
        return Judgement(True, "domain")
    if domain >= 0.4 and question and cjk >= 6:
        return Judgement(True, "question")
    if fault >= 2 and cjk >= 6:
        return Judgement(True, "fault")
    if (fault or question) and cjk >= 8 and not _count(norm, _TEMPORAL):
        return Judgement(True, "question" if question else "fault")
    if cjk >= SUBSTANTIVE_CJK and not _count(norm, _TEMPORAL):
        return Judgement(True, "description")
    return Judgement(False, "no technical content")


class Tone(StrEnum):
    """What a message that is not a problem is, for a reply in kind: most get nothing or a word."""

    SCHEDULE = "schedule"  # 明天大讲堂几点开始？: answered from the calendar
    CELEBRATION = "celebration"  # 首段道床顺利浇筑完成！: a short congratulation
    WISH = "wish"  # 周末愉快: the wish returned
    THANKS = "thanks"  # 谢谢: 不客气
    GREETING = "greeting"  # 大家好: nothing in a group, a hello in private
    ACK = "ack"  # 收到, 好的👌, 辛苦了: nothing
    LAUGHTER = "laughter"  # 哈哈, a sticker: a smile
    OTHER = "other"


_THANKS_TO_US = ("谢谢", "多谢", "感谢", "谢了", "谢啦", "thanks", "thx", "thank")
_CONGRATULATION = re.compile(
    r"恭喜|祝贺|喜报|捷报|(?<![没不未])(?:成功|圆满)|顺利"
    r"|(?:贯通|合龙|封顶|通车|送电|开通|投运|落梁|到位)(?:了|啦|[!！。]|$)"
    r"|(?:浇筑|架设|拼装|铺设|安装|施工|验收)(?:完成|完毕|通过)"
)
_WISH = re.compile(
    r"(?:周末|节日|新年|春节|元旦|国庆|中秋|端午|假期|生日|工作|五一|圣诞)(?:愉快|快乐)"
    r"|一路平安|身体健康|万事如意|节日好"
)
_EMOJI_ONLY = re.compile(r"^[\W_\d]*$")


def chatter_tone(text: str) -> Tone:
    """The kind of a message already judged not to be a problem."""
    norm = normalize(text)
    if _SCHEDULE_QUESTION.search(norm):
        return Tone.SCHEDULE
    if _CONGRATULATION.search(norm) and not _count(norm, QUESTION_MARKERS):
        return Tone.CELEBRATION
    if _WISH.search(norm):
        return Tone.WISH
    if _count(norm, _THANKS_TO_US):
        return Tone.THANKS
    cjk = sum(1 for c in norm if is_cjk(c))
    if cjk <= 10 and (_count(norm, ACKS) or _ACK_OPENING.match(norm) or "辛苦" in norm):
        return Tone.ACK
    if cjk <= 10 and _count(norm, GREETINGS):
        return Tone.GREETING
    if _count(norm, LAUGHTER) or _EMOJI_ONLY.match(norm):
        return Tone.LAUGHTER
    return Tone.OTHER


def wish_in(text: str) -> str | None:
    """The wish a message makes (``周末愉快``), to return it."""
    match = _WISH.search(normalize(text))
    return match.group(0) if match else None
