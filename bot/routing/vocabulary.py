"""Railway-construction domain vocabulary: concepts (groups of related terms), variants and stop words.

The vocabulary is deliberately broad and roster-independent: it describes the trade (bridges, tunnels, urban
rail, the "four electrics" and cross-cutting topics such as concrete, welding, surveying and QC), so that a
question worded differently from a studio's roster entry still lands on the right concept.

Data is kept as compact text blocks and parsed on first use (module import stays cheap):

- ``CONCEPTS``: one concept per line, ``label: term term term``; a block header ``[discipline]`` sets the
  discipline of the concepts below it (``bridge``, ``tunnel``, ``urban``, ``power`` or ``general``).
- ``VARIANTS``: ``variant=canonical`` pairs (colloquial forms, abbreviations, common typos); a variant is
  replaced by its canonical form wherever terms are compared.
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

DISCIPLINES = ("bridge", "tunnel", "urban", "power", "general")

CONCEPTS = """
[bridge]
桩基成孔: 桩基 基桩 钻孔桩 钻孔灌注桩 灌注桩 成孔 冲击钻 冲击钻机 旋挖钻 旋挖钻机 旋挖 回旋钻 反循环 正循环 清孔 沉渣 孔底沉渣 塌孔 坍孔 缩径 孔斜 斜孔 卡钻 掉钻 扩孔 漏浆 孔深 终孔 钢筋笼 声测管 成桩 桩长 桩径 嵌岩 入岩 护筒 钢护筒 全护筒 桩头 破桩头 截桩 桩底 桩基成孔 桩基施工 孔内水头 片石 卵石夹砂 摩擦桩 端承桩 导管 冲孔 冲锤 钻头 掉锤 回填 溶洞回填 跟进 护筒跟进
护壁泥浆: 泥浆 护壁泥浆 泥浆比重 泥浆性能 膨润土 造浆 含砂率 泥浆黏度 泥浆池 补浆 水头 泥浆净化 除砂器 泥浆指标
桩基检测: 桩基检测 低应变 高应变 声波透射 桩身完整性 静载试验 断桩 夹泥 桩身缺陷 钻芯 取芯 三类桩 四类桩
水中基础: 水中墩 江中墩 深水基础 钢吊箱 钢套箱 吊箱 套箱 围堰 双壁钢围堰 钢板桩围堰 封底 水下封底 封底混凝土 抽水 着床 吸泥 下放 吊挂 拼装下放 锁口 钢沉井 沉井 筑岛 栈桥 钻孔平台
承台温控: 承台 大体积混凝土 大体积 温控 温度控制 冷却管 冷却水 进出水温差 内外温差 测温 测温元件 水化热 温度裂缝 温度应力 保温养护 绝热温升 入模温度 承台温控
冲刷防护: 冲刷 冲刷坑 局部冲刷 冲刷防护 抛石 抛石防护 护坦 河床 汛期 汛后 度汛 防洪 墩位 石笼 防冲
墩台: 墩身 桥墩 桥台 翻模 爬模 液压爬模 滑模 墩帽 盖梁 墩柱 空心墩 薄壁墩 高墩 垫石 支座垫石 墩顶 台帽 系梁 墩台 爬架 导轨 墩身垂直度 垂直度 暖棚
临时结构: 临时结构 临时设施 支架 满堂支架 少支架 贝雷 贝雷梁 贝雷片 钢管柱 钢管支架 模板支撑 支撑体系 临时墩 吊架 托架 三角架 三角托架 牛腿 预压 支架预压 扣件式支架 碗扣支架 盘扣支架 盘扣 承插型 缀条 缀板 结构计算 验算 计算书 受力分析 受力计算 稳定性 稳定性分析 屈曲 局部承压 焊缝验算 后锚 后锚段 悬挑 悬挑长度 工字钢 型钢 分配梁 钢平台 钢管桩平台 钢管桩 施工平台 施工便桥 便桥 作业平台 作业台 斜撑 平台梁 砂箱 卸落 卸载 地基承载力 换填
现浇梁: 现浇梁 现浇箱梁 支架现浇 移动模架 造桥机 模架 浇筑顺序 连续梁 连续刚构 刚构 箱梁 腹板 顶板 底板 齿块 横隔板
预制梁: 预制梁 预制箱梁 箱梁预制 梁场 制梁 制梁场 存梁 T梁 预制T梁 小箱梁 空心板 制梁台座 台座 预制构件 梁体 整孔箱梁 900t箱梁 内模 液压内模 外模 端模 蒸养 蒸汽养护 移梁 提梁 钢筋胎具 胎具 胎架 绑扎胎具 梁端 存梁台座 静载 梁体外观
架梁装备: 架梁 架桥机 架梁机 运梁车 运梁台车 运梁炮车 搬梁机 搬梁车 提梁机 提梁门吊 轮胎式搬梁机 过孔 过跨 喂梁 落梁 支腿 前支腿 中支腿 后支腿 辅助支腿 天车 起重小车 主梁 导梁 驮运 架梁装备 箱梁架设 液压悬挂 转向 后桥
起重吊装: 起重 起重机 履带吊 汽车吊 龙门吊 门吊 门式起重机 龙门起重机 塔吊 塔式起重机 吊装 吊装方案 吊具 吊点 吊耳 吊索具 钢丝绳 卷扬机 起重量 额定荷载 力矩限制器 起升 变幅 主臂 臂架 大车 小车 大车行走 试吊 抬吊 双机抬吊 起吊 重型吊装 吊装作业 起重设备 安拆 啃轨
顶推: 顶推 液压顶推 步履式顶推 多点顶推 顶推施工 滑道 滑块 纠偏 千斤顶 同步顶升 顶升 拖拉 导梁下挠
悬臂施工: 悬臂浇筑 悬浇 挂篮 0号块 零号块 合龙 合龙段 边跨 中跨 次边跨 对称浇筑 临时固结 体系转换 悬臂拼装 节段拼装 悬拼 钢梁悬拼 节段 压重 配重 合龙温度 解除临时固结 锁定装置 连成一体
预应力: 预应力 张拉 预应力筋 钢绞线 锚具 夹片 波纹管 孔道 压浆 孔道压浆 真空压浆 管道压浆 循环压浆 伸长量 张拉力 锚下应力 锚下有效预应力 千斤顶标定 锚垫板 滑丝 断丝 回缩 精轧螺纹钢 预应力损失 反拱 上拱 预应力张拉 智能张拉 封锚 压浆料
缆索体系: 斜拉桥 斜拉索 拉索 索塔 主塔 塔柱 塔梁 上横梁 下横梁 主动横撑 横撑 索力 挂索 索导管 锚箱 索鞍 主缆 吊索 悬索桥 猫道 紧缆 PE护套 护套 扣索 扣塔 缆索吊 缆索 索力调整 缆索桥梁 索塔分节 塔吊附着 矮塔斜拉桥 索夹 平行钢丝 索体
拱桥: 拱桥 拱肋 拱脚 拱座 钢管拱 钢管混凝土拱 系杆拱 吊杆 系杆 劲性骨架 管内混凝土 拱圈 拱肋吊装 拱肋合龙 拱式桥梁 拱上立柱
钢桥: 钢箱梁 钢桁梁 钢梁 钢混组合梁 组合梁 叠合梁 钢结构桥 高强螺栓 栓接 桥面板 正交异性板 U肋 钢桥面 涂装 防腐涂装 焊接变形 钢桥制造 节段拼焊 剪力钉 钢锚梁 钢桁梁架设 杆件 杆件拼装 节点板 整体节点 冲钉 高栓 高强度螺栓 终拧 初拧 施拧 扭矩系数 轴力 摩擦面 抗滑移系数 抗滑移 栓合 错孔 扩孔 钢桁 下弦杆 上弦杆 腹杆 面漆 底漆 涂层 油漆
转体: 转体 转体施工 转体桥 球铰 转盘 撑脚 牵引索 平转 竖转 称重试验 不平衡力矩 上转盘 下转盘 滑道 封铰 牵引力 启动牵引力 转体牵引 配重 跨既有线 天窗 天窗点 营业线 邻近营业线 防护棚架
支座伸缩: 支座 盆式支座 球型支座 橡胶支座 减隔震支座 减隔震 支座灌浆 支座安装 伸缩缝 伸缩装置 防落梁 限位装置 抗震挡块
桥面系: 桥面铺装 防撞墙 防撞护栏 护栏 桥面系 桥面防水 泄水管 人行道 遮板 电缆槽 竖墙 声屏障
桥梁监控: 施工监控 监控 线形控制 线形 预拱度 立模标高 高程 标高 挠度 下挠 应力监测 索力监测 变形监测 前端高程 预测高程 施工控制 桥梁监测 主梁线形 合龙精度
涵洞框构: 涵洞 框构 框架桥 顶进 顶进框构 箱涵 盖板涵 圆管涵

[tunnel]
盾构推进: 盾构 盾构法 土压平衡 泥水平衡 泥水盾构 土压盾构 推进 推力 总推力 扭矩 刀盘扭矩 掘进参数 推进参数 推进速度 贯入度 土仓 土仓压力 泥水压力 切口压力 出土量 出渣量 螺旋输送机 喷涌 盾构掘进 掘进 覆土 覆土厚度 穿越 下穿 侧穿 盾构施工 称重系统 出土 出渣 仓压 气压 建仓 泥水分离 泥水分离站 分离站 泥水处理 泥水仓 滞排 排泥管 进浆管 排浆 环流 携渣 切口水压 江底 过江 越江
盾构姿态: 姿态 盾构姿态 导向系统 激光站 搬站 机头 盾首 盾尾 偏差 水平偏差 垂直偏差 姿态测量 盾尾间隙 铰接 铰接油缸 蛇行 姿态纠偏 自动导向 后视 换站
管片: 管片 管片拼装 拼装机 管片选型 选型 排版 点位 封顶块 邻接块 标准块 错台 管片破损 管片开裂 螺栓复紧 上浮 隧道上浮 管片上浮 椭圆度 成型隧道 管片渗漏 管片生产 管片模具 环缝 纵缝 转弯环 楔形量 拼装质量 管片预制
同步注浆: 同步注浆 壁后注浆 二次注浆 补注浆 注浆压力 注浆量 浆液 砂浆 双液浆 凝结时间 惰性浆液 注浆管 充填率 注浆填充 浆液配比 单液浆
渣土改良: 渣土改良 泡沫剂 发泡剂 分散剂 泥饼 结泥饼 改良剂 渣土 渣土坍落度 砂卵石 砂卵石地层 富水砂层 流塑 粘性土 结饼 渣土流动性 干沙 卡死
始发接收: 始发 接收 洞门 洞门密封 帘布橡胶板 反力架 始发托架 端头加固 端头井 负环 钢套筒 到达 盾构到达 接收井 始发井 盾构过站 调头 洞门凿除
盾构检修: 刀盘 滚刀 刀圈 刮刀 刀具 换刀 开仓 带压开仓 刀具磨损 偏磨 刀盘磨损 刀盘修复 面板 耐磨层 堆焊 焊补 主驱动 主轴承 齿轮箱 主驱动密封 减速机 盾尾刷 盾尾钢丝刷 盾尾密封 盾尾油脂 油脂 液压系统 液压泵站 泵站 液压油 油温 冷却水 油缸 PLC 变频器 电气控制 拖车 管片吊机 泥水处理 泥浆泵 盾构检修 再制造 盾构机维修 设备检修 故障诊断 崩刃 刀盘裂纹 润滑 齿轮 轴承 密封失效 电气故障 推进油缸 内泄 保压 铰接密封 冷却器 异响 铁屑 再制造 拆机
硬岩掘进机: TBM 硬岩掘进机 掘进机 敞开式TBM 双护盾 单护盾 撑靴 护盾 卡机 皮带机 皮带 托辊 跑偏 连续皮带机 出渣皮带 岩渣 硬岩 花岗岩 单轴抗压 撑靴 卡机脱困 脱困 胶带 输送带 皮带撕裂 岩爆 弹射 贯入度
钻爆开挖: 钻爆 钻爆法 爆破 爆破开挖 爆破参数 炮孔 周边孔 掏槽 掏槽孔 辅助孔 装药 装药量 光面爆破 光爆 超挖 欠挖 炸药 雷管 电子雷管 起爆 单段药量 最大段药量 爆破振动 台阶法 上下台阶 三台阶 CD法 CRD法 全断面 全断面法 双侧壁导坑 开挖 掌子面 开挖面 循环进尺 进尺 凿岩台车 三臂凿岩台车 钻孔台车 孔间距 炮眼 残孔 半孔率 山岭隧道 矿山法 新奥法 出渣运输 超耗 超欠挖
隧道突涌水: 突水 突泥 突水突泥 突泥涌水 涌水 突涌水 涌水处理 冒泥 冒水 冒泥水 涌泥 涌砂 泥石流 出水 出水量 涌水量 水压 高水压 黄泥 黄泥水 堵水 帷幕注浆 泄水洞 泄水 排水洞 富水 岩溶水 水量
隧道洞口: 洞口 进洞 明洞 边仰坡 边坡 仰坡 坡顶 偏压 套拱 洞口段 洞门墙 截水沟 洞口防护
初期支护: 初支 初期支护 喷射混凝土 喷混 湿喷 湿喷机 钢架 拱架 格栅 格栅钢架 型钢钢架 工字钢钢架 锁脚锚杆 锁脚 锚杆 系统锚杆 砂浆锚杆 中空锚杆 药卷锚杆 钢筋网 拱脚 拱脚悬空 拉拔试验 拉拔力 喷层 支护 钢架间距 连接板 纵向连接筋 垫块 槽钢
超前支护: 深孔 深孔注浆 wss 超前支护 超前小导管 小导管 管棚 大管棚 超前管棚 超前锚杆 帷幕注浆 超前注浆 全断面注浆 周边注浆 注浆加固 注不进去 止浆墙 注浆孔 管棚钻机
隧道地质: 围岩 围岩分级 围岩级别 Ⅲ级围岩 Ⅳ级围岩 Ⅴ级围岩 地质素描 超前地质预报 地质预报 地质雷达 TSP 超前钻探 加深炮孔 断层 破碎带 断层破碎带 岩溶 溶洞 突泥 突泥涌水 涌水 突水 涌水处理 软岩 大变形 软岩大变形 膨胀岩 瓦斯 瓦斯隧道 高地应力 岩爆 千枚岩 板岩 节理 层理 节理裂隙 揭示 不良地质 富水 地下水 探孔 超前探孔 超前钻孔 溶腔 溶洞充填 充填物
隧道量测: 监控量测 拱顶沉降 拱顶下沉 周边收敛 收敛 净空收敛 洞内外量测 量测 变形速率 沉降速率 累计沉降 收敛速率 量测断面 位移 测点 初支变形 侵限 换拱
隧道防排水: 防排水 防水板 防水卷材 卷材 土工布 无纺布 止水带 止水条 背贴式止水带 中埋式止水带 盲管 环向盲管 纵向盲管 排水管 渗水 渗漏水 漏水 渗漏 堵漏 注浆堵漏 引排 施工缝 变形缝 接茬 铺挂 热熔焊接 爬焊 双焊缝 充气检测 防水层 排水沟 中心水沟 渗漏治理 滴水 挂帘
衬砌: 二衬 二次衬砌 衬砌 衬砌台车 模板台车 台车 拱顶 脱空 背后脱空 厚度不足 衬砌厚度 衬砌裂缝 带模注浆 挡头板 堵头板 浇筑窗口 振捣 泵送 泵压 拆模 排气孔 浇不满 搭接长度 上一板 衬砌混凝土 边墙 拱墙 衬砌浇筑 衬砌质量 台车就位 端头模板
仰拱: 仰拱 仰拱栈桥 仰拱填充 填充层 隧底 仰拱开挖 仰拱封闭 仰拱施工
隧道检测: 雷达检测 无损检测 衬砌检测 钻孔检测 空洞 质量检测 地质雷达检测 厚度检测 回弹 钻芯检测
施工通风: 施工通风 通风 风机 风管 有害气体 粉尘 独头通风 射流风机 洞内空气
竖井斜井: 竖井 斜井 横洞 平导 提升机 井架 联络通道 冻结法 冻结

[urban]
基坑开挖: 基坑 深基坑 基坑开挖 分层开挖 分段开挖 分层分段 土方开挖 土方 抽条开挖 抽条 坑底 坑底隆起 基底 垫层 放坡 开挖到底 超挖 坑内 坑外 盆式开挖 岛式开挖 挖土 出土口
围护结构: 围护结构 围护 围护桩 钻孔咬合桩 咬合桩 地下连续墙 地连墙 连续墙 SMW工法桩 工法桩 冠梁 腰梁 围檩 桩间喷网 桩间土 桩间 喷网 旋喷桩 止水帷幕 帷幕 三轴搅拌桩 搅拌桩 成槽 槽壁 槽段 接头 锁口管 工字钢接头 刷壁 导墙 围护墙 渗漏点
内支撑: 内支撑 钢支撑 混凝土支撑 混凝土撑 对撑 角撑 斜撑 换撑 拆撑 支撑拆除 支撑轴力 轴力 伺服系统 轴力伺服 活络头 预加轴力 支撑架设 第一道支撑 第二道支撑 栈桥板 立柱桩 格构柱
基坑降水: 降水 井点降水 管井 降水井 轻型井点 井点 承压水 突涌 水位 地下水位 回灌 出水浑浊 抽水 疏干井 减压井 降水井点 水位观测
基坑监测: 监测 监测预警 基坑监测 测斜 深层水平位移 地表沉降 建筑物沉降 周边建筑 周边环境 老房子 房屋开裂 管线 管线沉降 红色预警 黄色预警 橙色预警 报警值 预警值 监测数据 累计值 变化速率 墙顶位移 第三方监测 周边地表
软土加固: 软土 软土地基 地基加固 旋喷 高压旋喷 注浆加固 淤泥 淤泥质土 软塑 流塑 黏土 粉质黏土 粉细砂 承载力 坑底加固 MJS 水泥土 软土加固
车站主体: 车站 地铁车站 明挖 明挖法 盖挖 盖挖逆作 逆作 暗挖 浅埋暗挖 主体结构 顶板 中板 侧墙 出入口 风亭 附属结构 结构防水 站台 站厅 换乘 区间 车站施工 PBA 洞桩法 中洞法 导洞 扣拱 初支扣拱 边桩 中桩 顶纵梁 底纵梁 拆撑 临时仰拱 临时中隔壁 中隔壁
轨道道床: 铺轨 铺轨基地 整体道床 道床 道床施工 无砟轨道 有砟轨道 板式轨道 轨道板 CRTSⅢ型板 双块式 轨枕 轨排 轨排架 自密实混凝土 砂浆层 底座板 隔离层 弹性垫层 浮置板 减振垫 减振道床 道床浇筑 轨道施工 支撑块 钢弹簧浮置板
精测精调: 精测 精调 精测精调 精测网 控制网 CPⅢ CPⅠ CPⅡ 轨道控制网 轨检 轨检小车 轨道检测 轨道几何 轨距 轨向 高低 三角坑 扭曲 轨道平顺性 平顺性 扣件 调整量 调高垫板 轨距块 扣件安装 绝对测量 相对测量 精密测量 点位 自由设站 轨检数据 静态检测 动态检测 轨道精调 轨检车 联系测量 两井定向 陀螺定向 定向 贯通误差 横向贯通误差 调线 调线调坡 点云 限界检测 侵限 断面扫描
钢轨焊接: 钢轨 钢轨焊接 长轨焊接 长轨 焊轨 闪光焊 铝热焊 接触焊 移动焊 焊头 焊接接头 接头 打磨 轨顶 轨面 凹陷 平直度 无缝线路 单元轨节 应力放散 锁定 锁定轨温 位移观测桩 钢轨探伤 轨温 钢轨接头 锯轨 重焊 长钢轨 焊轨基地 钢轨打磨
道岔铺设: 道岔 道岔铺设 尖轨 心轨 辙叉 岔枕 密贴 道岔精调 道岔区 转换设备 可动心轨 道岔几何
有砟线路: 道砟 捣固 大机 大机捣固 起拨道 上砟 整道 稳定车 配砟
城轨机电: 机电安装 通风空调 给排水 屏蔽门 站台门 电扶梯 自动扶梯 综合监控 风水电 装修 消防 消防管道 消防水管 喷淋 试压 管道试压 风管 漏风 漏风量 空调机组 冷水机组 风机盘管 支吊架 综合支吊架 槽道 预埋槽道 梯级 扶梯 站台门 门体 桥架

[power]
接触网: 接触网 接触线 导线 导线架设 承力索 吊弦 整体吊弦 腕臂 腕臂预配 定位器 定位管 定位装置 硬横跨 软横跨 锚段 中心锚结 下锚 拉出值 导高 线夹 扭面 弛度 接触悬挂 简单链形悬挂 链形悬挂 支持装置 正馈线 回流线 附加导线 牵引网 架线 放线 架线车 作业车 接触网施工 接触网安装 限界 侧面限界 坡度
支柱基础: 支柱 支柱基础 基础螺栓 预埋螺栓 地脚螺栓 H型钢柱 钢柱 支柱装配 拉线 支柱立设 基础浇筑 预埋件 杯形基础 基坑开挖回填
补偿装置: 补偿装置 张力补偿 坠砣 坠砣串 棘轮 棘轮补偿 滑轮组 限制架 张力 a值 b值 补偿绳 张力不够 温度变化 弹簧补偿
刚性悬挂: 刚性悬挂 汇流排 刚性接触网 汇流排终端 膨胀元件 柔性悬挂 架空地线 弯头 终端弯头 悬挂点 锚段关节
电分相: 电分相 分相 过分相 自动过分相 无电区 中性段 分段绝缘器 绝缘锚段 关节 绝缘关节 绝缘子 断电装置 车载自动断电 分相绝缘器 绝缘 闪络
受流质量: 受流 受流质量 弓网 弓网关系 受电弓 弓头 抬升量 燃弧 拉弧 离线 硬点 接触压力 弓网检测 刮擦 打弓 钻弓 弓网故障 动态检测 检测车 打火 冒火花 火花 弓子 线岔 打弓 钻弓 刮弓
牵引变电: 牵引变电所 牵引变电 牵引所 AT所 分区所 开闭所 变电所 主变 主变压器 牵引变压器 变压器 主变安装 油务 油务处理 滤油 真空注油 油色谱 色谱 乙炔 氢气 变压器油 绝缘油 吊芯 就位 变电所安装 供电 牵引供电 整流机组
开关保护: 开关柜 高压开关柜 GIS 断路器 隔离开关 互感器 电流互感器 电压互感器 保护装置 继电保护 综合自动化 综自 保护定值 定值 整定 局放 局部放电 暂态地电压 超声波信号 跳闸 误动 拒动 二次回路 调校 传动试验 停电开柜 柜体 母线 微机保护 远动 SCADA 馈线 馈线保护 距离保护 过流保护 差动保护 差动 遥信 遥测 遥控 后台 对点 自投 备自投 sf6 气室 含水量 微水
电缆: 电缆 高压电缆 电力电缆 电缆头 电缆终端 冷缩终端 热缩终端 中间接头 应力锥 耐压 耐压试验 交流耐压 电缆敷设 电缆沟 电缆支架 电缆桥架 绝缘电阻 电缆头制作 35kV 10kV 27.5kV 铠装 屏蔽层 外护套 发热 过热 红外测温
接地: 接地 接地网 接地电阻 综合接地 贯通地线 等电位 降阻剂 防雷 避雷器 接地极 接地系统 接地线 接地扁钢 跨步电压 防雷接地 接地电阻 接闪器 引下线
直流电源: 直流屏 直流系统 蓄电池 蓄电池组 UPS 所用电 交直流 充电模块 绝缘监测 直流接地
电力配电: 电力 配电 配电箱 配电柜 变配电 箱变 箱式变电站 低压 低压配电 照明 电力贯通线 贯通线 自闭线 临时用电 用电 电力线路 架空线路 送电 受电 带电 停电 供配电 电能质量 无功补偿 贯通线 10kv 接地报警 单相接地 箱变 低压侧 负荷 中间头 电力电缆
通信光缆: 通信 光缆 光电缆 光纤 熔接 熔接损耗 熔接机 OTDR 光缆接续 接续盒 传输 传输设备 SDH OTN 光缆敷设 光电缆布放 槽道 电缆槽道 光功率 衰耗 尾纤 配线架 光缆径路 通信电缆 数据网 交换机 视频监控 广播 时钟 通信机房 光口 闪断 误码 光模块 尾缆 摄像头 摄像机 录像
车地无线: 车地无线 无线 无线覆盖 GSM-R LTE-R 5G-R 基站 铁塔 漏缆 泄漏电缆 天线 驻波比 场强 干扰 同频干扰 越区切换 切换 掉线 无线超时 AP 无线通信 CBTC 车地通信 BBU RRU 直放站 弱场 频点
列控: 列控 列控系统 列控中心 CTCS CTCS-2 CTCS-3 RBC 应答器 ATP ATO ATS 车载 车载ATP 车载设备 临时限速 限速命令 TCC 行车许可 速度码 CBTC信号 ZC 联调联试 联调 联试 回执 数据配置 动车 动检车
联锁: 联锁 计算机联锁 联锁试验 进路 信号机 信号 信号设备 信号楼 继电器 组合架 道岔控制 联锁关系 信号施工 信号电缆 进路锁闭 锁闭 解锁 人工解锁 区段解锁 排列进路 信号开放
区段检查: 区段 区段检查 区段占用 占用 红光带 轨道电路 ZPW-2000 计轴 计轴板 计轴器 磁头 补偿电容 电码化 分路不良 调谐区 轨道区段 出清 方向错误 计轴复位 计轴设备 主轨 小轨 入口电压 轨面电压 分路残压 残压 调谐单元 空芯线圈
转辙机: 转辙机 转撤机 道岔转辙机 表示缺口 缺口 密贴检查 外锁闭 锁闭 动作杆 表示杆 道岔表示 道岔缺口 电液转辙机 ZDJ9 S700K 挤岔 道岔密贴 安装装置 卡阻 扳不动 转换卡阻 道岔转换 尖轨 密贴调整

[general]
混凝土: 混凝土 砼 配合比 坍落度 强度 混凝土强度 养护 蜂窝麻面 蜂窝 麻面 保护层 外加剂 减水剂 水泥 粉煤灰 矿粉 抗渗 浇筑 振捣 冷缝 离析 泌水 收缩 徐变 回弹强度 试块 同条件试块 早强 缓凝 泵送混凝土 混凝土裂缝 裂缝 开裂 龟裂 收缩裂缝
钢筋: 钢筋 钢筋加工 直螺纹 滚轧直螺纹 套筒 钢筋连接 绑扎 钢筋间距 钢筋头 钢筋保护层 骨架 焊接网
焊接: 焊接 焊缝 焊工 气保焊 二保焊 埋弧焊 手工焊 焊条 焊丝 焊接工艺 焊接工艺评定 焊缝探伤 超声波探伤 磁粉探伤 焊接缺陷 气孔 夹渣 咬边 焊瘤 未熔合 焊机 焊接机器人 焊补 弯曲试验 拉伸试验 冲击试验 横向裂纹 纵向裂纹 返修 返修次数 预热 层间温度 焊后热处理 坡口 清根 厚板
测量: 测量 全站仪 水准仪 水准测量 GNSS GPS RTK 放样 控制点 控制测量 贯通测量 贯通误差 复测 导线测量 三维激光扫描 测量机器人 坐标 高程控制
安全: 安全 安全管理 安全生产 风险 隐患 应急 应急预案 高处作业 临边防护 有限空间 起重作业 安全帽 安全带 安全防护 安全技术交底 危大工程 专项方案 专家论证 事故 防护棚
质量管理: 质量 质量管理 QC QC小组 QC活动 QC课题 问题解决型 创新型课题 PDCA 质量通病 质量控制 质量问题 整改 验收 检验批 首件 首件制 课题 小组活动 成果发布
科技成果: 专利 发明专利 实用新型 专利撰写 交底书 专利交底书 权利要求 工法 工法编制 省级工法 企业级工法 科技奖 科技进步奖 论文 论文发表 期刊 核心期刊 中文核心 投稿 发表 科技成果 成果申报 申报资料 申报 鉴定 成果鉴定 查新 科技查新 经济效益 社会效益 技术总结 创新成果 五小 五小成果 技术革新 评审 获奖 课题研究 立项
BIM信息化: BIM 建模 Revit 模型 数字化 智能建造 信息化 智慧工地 数字孪生 可视化 仿真 二次开发 编程 软件 算法 物联网 传感器 自动化监测 大数据
机械设备: 设备 机械 故障 故障排查 报警 停机 维修 保养 液压 液压油缸 油缸 同步性 电机 发动机 变速箱 传感器故障 泵车 挖掘机 装载机 工装 工装设计 工具 小改小革 夹具
路基: 路基 填筑 压实 压实度 级配碎石 CFG桩 路堑 路堤 边坡防护 挡土墙 抗滑桩 路基沉降 地基处理 强夯 换填 碾压 过渡段
海外标准: 欧标 欧洲标准 欧洲规范 英标 美标 国际标准 标准转换 标准对照 中欧标准 圆柱体强度 立方体强度 英文 英文版 英文方案 海外 海外项目 境外 FIDIC 外籍 当地规范
施工组织: 施工组织 施工方案 技术方案 技术交底 工期 进度 成本 工程量 计量 劳务 班组 标准化 工艺 工序 技术管理 施工技术 方案编制
"""

VARIANTS = """
触网=接触网 接触网线=接触线 转撤机=转辙机 转辙器=转辙机 盾构机=盾构 土压平衡盾构=土压盾构 管环=管片 灌浆=注浆
螺机=螺旋输送机 螺旋机=螺旋输送机 二次衬砌=二衬 初期支护=初支 喷砼=喷射混凝土 喷浆=喷射混凝土 砼=混凝土
地下连续墙=地连墙 连续墙=地连墙 硬岩掘进机=TBM 全断面硬岩掘进机=TBM 掘进机=TBM 搬梁车=搬梁机 架桥机=架梁机
龙门吊=门吊 龙门起重机=门吊 门式起重机=门吊 塔式起重机=塔吊 cp3=CPⅢ cpiii=CPⅢ cp2=CPⅡ cpii=CPⅡ cp1=CPⅠ cpi=CPⅠ
crtsiii=CRTSⅢ型板 crts3=CRTSⅢ型板 gsmr=GSM-R lter=LTE-R 泄漏电缆=漏缆 盾尾钢丝刷=盾尾刷 钢丝刷=盾尾刷
拱架=钢架 格栅拱架=格栅钢架 小导=小导管 大管棚=管棚 防水卷材=防水板 卷材=防水板 红光带=区段占用 坍孔=塌孔
计轴器=计轴 计轴板=计轴 零号块=0号块 主变压器=主变 牵引所=牵引变电所 电缆终端=电缆头 局部放电=局放
超前小导管=小导管 拱顶下沉=拱顶沉降 周边收敛=收敛 净空收敛=收敛
预应力张拉=张拉 钢绞线束=钢绞线 钢吊箱=吊箱 钢套箱=套箱 溶洞=岩溶 板式无砟轨道=无砟轨道 整体道床=道床
道床板=道床 冲击钻机=冲击钻 旋挖钻机=旋挖钻 提梁门吊=提梁机 运梁台车=运梁车 受电弓=弓网 弓头=弓网
溶腔=岩溶 弓子=弓网 盾构机械=盾构 高强度螺栓=高栓 蒸汽养护=蒸养 超前钻孔=超前探孔 接地电阻值=接地电阻
"""

# Words that carry no routing information (function words, pleasantries, roster boilerplate).
STOP_WORDS = frozenset(
    """
    的 了 是 在 和 与 及 或 也 都 就 还 又 把 被 给 让 对 从 向 到 于 以 为 之 其 这 那 这个 那个 这些 那些
    这种 那种 这样 那样 一个 一下 一些 一点 有点 有些 我们 你们 他们 大家 各位 我 你 他 她 它 咱们 自己
    请问 请教 求助 求教 咨询 麻烦 谢谢 感谢 多谢 辛苦 老师 师傅 专家 工作室 大师 技能大师 劳模 工匠
    创新工作室 劳模创新 职工创新 技能 首席技师 技师 工程师 高级工程师 负责 包括 涵盖 覆盖 承担 专职 主要
    面向 关注 研究 以及 等 等等 方面 相关 进行 开展 工作 问题 情况 怎么 怎么办 怎样 如何 为什么 为何
    什么 什么样 啥 咋 咋办 哪里 哪儿 哪个 哪些 多少 几 是否 能否 可以 可能 能不能 要不要 会不会 有没有
    是不是 行不行 还是 不要 不能 不会 吗 呢 吧 啊 呀 哦 嗯 哈 了吗 一般 合适 比较 非常 特别 有 没有 没 不 很 太 更 最 再
    已经 正在 现在 目前 刚 刚刚 一直 总是 突然 然后 但是 可是 不过 因为 所以 如果 虽然 而且 并且
    需要 应该 必须 能 会 要 想 觉得 感觉 认为 知道 看看 看到 发现 出现 导致 造成 原因 经验 办法
    方法 建议 处理 解决 施工 工程 项目 技术 现场 公司 集团 单位 分公司 工程公司 中心 部门 谁 什么时候
    时候 之后 以后 之前 以前 后来 上面 下面 里面 外面 中间 这边 那边 第一 第二 一次 几次 好几 每次
    """.split()
)

# Terms that are too general to explain a recommendation on their own; they still count, weakly.
GENERIC_TERMS = frozenset(
    """
    施工 工程 技术 设备 质量 安全 监测 测量 检测 试验 焊接 混凝土 强度 裂缝 开裂 故障 报警 停机 维修
    支护 开挖 浇筑 注浆 接头 支撑 稳定性 验算 计算书 模型 软件 方案 施工方案 技术方案 工艺 课题 申报
    电力 供电 通信 信号 无线 电缆 钢筋 钢梁 节段 接地 调试 监控 变形 位移 沉降 偏差 压力 水位 抽水
    """.split()
)


# What each non-technical studio type is asked about (the charter's studio types, not any roster's studios): a
# question that asks for one of these is a request for a studio of that type, whatever trade it mentions
# ("a patent for a tunnelling tool" goes to the studio that writes patents).
TYPE_INTENTS: dict[str, tuple[str, ...]] = {
    "管理创新型": (
        "qc", "质量管理小组", "qc小组", "专利", "发明", "实用新型", "知识产权", "工法", "科技奖", "技术奖",
        "科技进步奖", "评奖", "获奖", "报奖", "申报", "评选", "成果鉴定", "查新", "论文", "发表", "标准化",
        "管理创新", "创新成果", "职工技术创新",
    ),
    "农民工管理型": (
        "农民工", "民工", "工人工资", "工资", "欠薪", "讨薪", "拖欠", "劳务", "劳务队", "班组长", "实名制",
        "用工", "劳动合同", "纠纷", "闹事", "上访", "工伤", "考勤", "夜校", "务工",
    ),
    "海外经营型": (
        "海外", "境外", "国外", "外籍", "外方", "业主方", "fidic", "英标", "欧标", "美标", "bs标准", "en标准",
        "当地员工", "属地化", "签证", "索赔", "汇率", "清关", "外币", "国际工程",
    ),
    "项目党建型": ("党建", "党员", "党支部", "支部", "党课", "先锋", "示范岗", "党小组", "主题党日"),
}


@dataclass(slots=True, frozen=True)
class Concept:
    """A group of closely related domain terms, e.g. everything about cable terminations."""

    label: str
    discipline: str
    terms: tuple[str, ...]


@dataclass(slots=True, frozen=True)
class Vocabulary:
    """The parsed domain vocabulary: concepts, the surface→canonical map and term→concept membership."""

    concepts: tuple[Concept, ...]
    canonical: Mapping[str, str]  # normalised surface form (incl. canonical forms) → canonical term
    concepts_of: Mapping[str, tuple[str, ...]]  # canonical term → concept labels
    discipline_of: Mapping[str, str]  # concept label → discipline

    def canon(self, word: str) -> str:
        """The canonical form of a (normalised) word; the word itself when it is no known variant."""
        return self.canonical.get(word, word)

    def is_term(self, word: str) -> bool:
        """Whether ``word`` (normalised) is a domain term or one of its variants."""
        return word in self.canonical


def fold(text: str) -> str:
    """NFKC-fold (full-width → half-width) and lowercase; the form in which all terms are compared."""
    return unicodedata.normalize("NFKC", text).lower()


def _parse_concepts(block: str) -> list[Concept]:
    concepts: list[Concept] = []
    discipline = "general"
    for raw in block.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            discipline = line[1:-1]
            if discipline not in DISCIPLINES:
                raise ValueError(f"unknown discipline {discipline!r}")
            continue
        label, _, rest = line.partition(":")
        terms = tuple(dict.fromkeys(fold(t) for t in rest.split()))
        concepts.append(Concept(label=label.strip(), discipline=discipline, terms=terms))
    return concepts


def _parse_variants(block: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in block.split():
        variant, _, canonical = item.partition("=")
        if not canonical:
            raise ValueError(f"bad variant entry {item!r}")
        pairs[fold(variant)] = fold(canonical)
    return pairs


def build_vocabulary(concept_block: str = CONCEPTS, variant_block: str = VARIANTS) -> Vocabulary:
    """Parse vocabulary text blocks (the built-in ones by default) into a :class:`Vocabulary`."""
    concepts = _parse_concepts(concept_block)
    variants = _parse_variants(variant_block)
    canonical: dict[str, str] = {}
    concepts_of: dict[str, list[str]] = {}
    for concept in concepts:
        for term in concept.terms:
            canon = variants.get(term, term)
            canonical.setdefault(term, canon)
            canonical.setdefault(canon, canon)
            labels = concepts_of.setdefault(canon, [])
            if concept.label not in labels:
                labels.append(concept.label)
    for variant, canon in variants.items():
        canonical[variant] = canon
        canonical.setdefault(canon, canon)
    return Vocabulary(
        concepts=tuple(concepts),
        canonical=canonical,
        concepts_of={term: tuple(labels) for term, labels in concepts_of.items()},
        discipline_of={c.label: c.discipline for c in concepts},
    )


_lock = threading.Lock()
_default: Vocabulary | None = None


def default_vocabulary() -> Vocabulary:
    """The built-in vocabulary, parsed once on first use."""
    global _default
    if _default is None:
        with _lock:
            if _default is None:
                _default = build_vocabulary()
    return _default


def all_surface_terms(vocabulary: Vocabulary | None = None) -> Iterable[str]:
    """Every surface form the vocabulary knows (canonical terms and variants)."""
    return (vocabulary or default_vocabulary()).canonical.keys()
