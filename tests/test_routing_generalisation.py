"""Generalisation check: an invented roster and questions written independently of the development samples.

None of these studios or questions appear in the development data; routing must do well here from the
built-in domain vocabulary, not from anything tuned on the samples.
"""

from __future__ import annotations

import pytest

from bot.routing import RoutingIndex, StudioDoc, evaluate

ROSTER = [
    StudioDoc(
        "sig-interlock",
        "周进路信号联锁技能大师工作室",
        "电气化与通号联盟",
        ("计算机联锁", "信号机", "联锁试验", "继电电路", "轨道电路调整"),
        "负责车站信号联锁设备安装配线、联锁关系试验、轨道电路调整与分路测试。",
    ),
    StudioDoc(
        "sig-train",
        "列控车载与应答器工作室",
        "电气化与通号联盟",
        ("应答器", "列控数据", "车载设备", "无线闭塞中心", "临时限速"),
        "从事高铁列控系统工程，应答器安装与报文核对、列控数据验证、车载设备调试及动态检测配合。",
    ),
    StudioDoc(
        "ocs-install",
        "吴腕臂接触网检调工作室",
        "电气化与通号联盟",
        ("腕臂安装", "吊弦制作", "承力索架设", "锚段关节", "拉出值调整"),
        "承担电气化铁路接触网的安装与检调，腕臂计算与预配、吊弦计算制作、悬挂调整和冷滑热滑配合。",
    ),
    StudioDoc(
        "sub-station",
        "牵引变电所调试工作室",
        "电气化与通号联盟",
        ("变压器试验", "继电保护", "综合自动化", "GIS", "远动"),
        "牵引变电所、分区所的设备试验与系统调试，保护定值校验、综合自动化系统联调和远动对点。",
    ),
    StudioDoc(
        "comm-net",
        "铁路通信传输工作室",
        "电气化与通号联盟",
        ("光缆接续", "传输网", "GSM-R", "视频监控", "通信电源"),
        "铁路通信工程，长途光缆敷设接续与测试、传输网络开通、无线网络优化、视频监控系统调试。",
    ),
    StudioDoc(
        "tun-drill",
        "山岭隧道钻爆施工工作室",
        "隧道与地下工程联盟",
        ("光面爆破", "台阶法", "初期支护", "超前地质预报", "软岩大变形"),
        "研究复杂地质山岭隧道钻爆法开挖，光面爆破设计、台阶法施工、初期支护与软岩大变形控制。",
    ),
    StudioDoc(
        "tun-water",
        "隧道防水与衬砌质量工作室",
        "隧道与地下工程联盟",
        ("防水板焊接", "止水带", "二衬浇筑", "衬砌脱空", "渗漏水整治"),
        "专注隧道防排水和衬砌质量，防水板铺设焊接、止水带安装、二衬浇筑工艺及渗漏水整治。",
    ),
    StudioDoc(
        "tun-shield",
        "盾构区间施工工作室",
        "隧道与地下工程联盟",
        ("盾构始发", "同步注浆", "管片拼装", "盾构接收", "姿态控制"),
        "地铁盾构区间施工技术，盾构始发接收、掘进参数和姿态控制、管片拼装质量以及地表沉降控制。",
    ),
    StudioDoc(
        "metro-station",
        "地铁车站深基坑工作室",
        "城市轨道交通联盟",
        ("地下连续墙", "钢支撑", "基坑降水", "盖挖逆作", "基坑监测"),
        "地铁车站深基坑工程，地下连续墙成槽、钢支撑安装及轴力补偿、降水设计与基坑监测分析。",
    ),
    StudioDoc(
        "track",
        "无砟轨道施工工作室",
        "城市轨道交通联盟",
        ("轨道板铺设", "精调", "自密实混凝土", "钢轨焊接", "道岔铺设"),
        "无砟轨道和道岔施工，轨道板铺设精调、自密实混凝土灌注、钢轨焊接及道岔铺设调整。",
    ),
    StudioDoc(
        "br-prestress",
        "预应力连续梁工作室",
        "桥梁建造联盟",
        ("挂篮悬浇", "预应力张拉", "孔道压浆", "合龙段", "线形控制"),
        "大跨连续梁和连续刚构施工，挂篮设计与悬臂浇筑、预应力张拉压浆、合龙段施工和线形控制。",
    ),
    StudioDoc(
        "br-pile",
        "桥梁基础施工工作室",
        "桥梁建造联盟",
        ("旋挖钻", "钢筋笼", "水下混凝土", "钢围堰", "承台"),
        "桥梁桩基和深水基础施工，旋挖与冲击成孔、钢筋笼制安、水下混凝土灌注、钢围堰下沉与承台施工。",
    ),
    StudioDoc(
        "br-erect",
        "架桥机与箱梁架设工作室",
        "桥梁建造联盟",
        ("架桥机", "运梁车", "箱梁架设", "支座安装", "梁场"),
        "900吨级箱梁运架，架桥机拼装与过孔、运梁车操作维保、箱梁架设及支座安装。",
    ),
    StudioDoc(
        "qc-bim",
        "BIM与智能建造工作室",
        "城市轨道交通联盟",
        ("BIM建模", "智慧工地", "三维扫描", "二次开发"),
        "推进BIM技术在铁路工程中的应用，模型创建与轻量化、智慧工地平台、三维激光扫描和软件二次开发。",
    ),
    StudioDoc(
        "weld",
        "钢结构焊接工作室",
        "桥梁建造联盟",
        ("钢箱梁焊接", "焊接工艺评定", "焊缝探伤", "焊接变形"),
        "钢桥和钢结构焊接，焊接工艺评定、钢箱梁节段焊接、焊缝无损探伤与焊接变形矫正。",
    ),
]

QUESTIONS = [
    ("进路排列后信号机开放不了，联锁表核对过没问题", "sig-interlock", ()),
    ("轨道电路分路残压偏高，0.06Ω标准分路线测不过", "sig-interlock", ()),
    ("车站咽喉区道岔区段红光带，晴天正常，下雨就出现", "sig-interlock", ()),
    ("应答器报文读不出来，车载报BTM故障", "sig-train", ()),
    ("临时限速设置后车载没有反应，限速区段显示不对", "sig-train", ()),
    ("RBC切换点列车降级到C2了，是什么原因", "sig-train", ()),
    ("吊弦长度计算出来装上去导高不对，误差有20mm", "ocs-install", ()),
    ("腕臂装好后定位器坡度不对，怎么调整", "ocs-install", ()),
    ("锚段关节处两支接触线等高点调不好", "ocs-install", ()),
    ("主变空载合闸时差动保护误动作", "sub-station", ()),
    ("GIS气室SF6压力低报警，补气后又掉了", "sub-station", ()),
    ("远动信息点表对不上，调度端看不到断路器位置", "sub-station", ()),
    ("光缆接续后OTDR测试衰耗台阶很大", "comm-net", ()),
    ("区间GSM-R场强弱，有几处掉话", "comm-net", ()),
    ("视频监控画面卡顿，传输带宽够吗", "comm-net", ()),
    ("上台阶爆破后拱部掉块严重，周边眼怎么布", "tun-drill", ()),
    ("炭质板岩段初支变形很大，一天收敛3cm，钢架扭曲", "tun-drill", ()),
    ("TSP预报前方有富水断层，超前钻孔要打多深", "tun-drill", ()),
    ("防水板热熔焊缝充气检测压力保不住", "tun-water", ()),
    ("二衬拆模后拱腰有环向裂缝", "tun-water", ()),
    ("中埋式止水带浇筑时跑位了怎么办", "tun-water", ()),
    ("施工缝渗水成线，准备打环氧树脂还是聚氨酯", "tun-water", ()),
    ("盾构始发时洞门帘布被刀盘带翻了，漏泥", "tun-shield", ()),
    ("同步注浆量打了理论值的180%，地表还是沉", "tun-shield", ()),
    ("管片拼完错台15mm，螺栓穿不进去", "tun-shield", ()),
    ("地连墙接缝漏水带砂，基坑开挖到第三层了", "metro-station", ()),
    ("钢支撑轴力掉得很快，活络头楔块松了", "metro-station", ()),
    ("承压水头很高，坑底有冒水点", "metro-station", ()),
    ("自密实混凝土灌注后轨道板底有脱空", "track", ()),
    ("轨道板精调后复测，高程又变了1mm，扣件还能调吗", "track", ()),
    ("道岔尖轨与基本轨不密贴，有1.5mm缝", "track", ("sig-interlock",)),
    ("挂篮走行时后锚点反力不够，轨道有翘起", "br-prestress", ()),
    ("钢绞线张拉伸长量超了8%，是不是孔道摩阻大", "br-prestress", ()),
    ("压浆后发现孔道不饱满，出浆口不出浆", "br-prestress", ()),
    ("旋挖成孔到砂层塌孔严重，泥浆比重已经1.2了", "br-pile", ()),
    ("钢围堰下沉到一半倾斜了", "br-pile", ()),
    ("导管拔出后桩顶混凝土标高不够，要接桩吗", "br-pile", ()),
    ("架桥机过孔时前支腿下挠超标", "br-erect", ()),
    ("运梁车重载下坡刹车发热", "br-erect", ()),
    ("支座安装后四角高差超过2mm", "br-erect", ("br-prestress",)),
    ("Revit族库做出来的管片模型导到Navisworks很卡", "qc-bim", ()),
    ("智慧工地平台塔吊监测数据接不进来", "qc-bim", ()),
    ("钢箱梁U肋焊缝超声波探伤有未熔合", "weld", ()),
    ("厚板对接焊后角变形大，有什么反变形措施", "weld", ()),
]


@pytest.fixture(scope="module")
def index() -> RoutingIndex:
    """The invented roster, no history."""
    return RoutingIndex(ROSTER)


def test_invented_roster_accuracy(index: RoutingIndex) -> None:
    """Decent accuracy on a roster and questions the vocabulary was not tuned on."""
    questions = [
        {"id": str(i), "text": t, "expect": e, "also": list(a)} for i, (t, e, a) in enumerate(QUESTIONS)
    ]
    result = evaluate(index, questions)
    print(f"\ninvented roster: {result}")
    assert result.top1 >= 0.8
    assert result.top3 >= 0.93
    assert result.judged_problem >= 0.95
