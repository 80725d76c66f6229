// Package i18n is the gateway's own catalogue for texts it writes for
// people (notify messages, server-side titles): zh-CN, the default, and
// English. Keys shared with the console (type.*, sev.*, loc.*, prio.*,
// kind.*) must read the same as edge/console/web/i18n.js; a test checks.
package i18n

import (
	"strings"

	"github.com/smartcommunity/warden/edge/event"
)

// Languages.
const (
	ZH = "zh-CN"
	EN = "en"
)

// Pick returns the supported language closest to an Accept-Language value
// or a config setting; zh-CN when nothing matches.
func Pick(pref string) string {
	for _, part := range strings.Split(pref, ",") {
		tag := strings.ToLower(strings.TrimSpace(strings.SplitN(part, ";", 2)[0]))
		switch {
		case strings.HasPrefix(tag, "zh"):
			return ZH
		case strings.HasPrefix(tag, "en"):
			return EN
		}
	}
	return ZH
}

// T looks key up in lang (falling back to zh-CN, then the key) and fills
// {name} placeholders from vars, given as name, value pairs.
func T(lang, key string, vars ...string) string {
	s, ok := catalogue(lang)[key]
	if !ok {
		if s, ok = zh[key]; !ok {
			s = key
		}
	}
	for i := 0; i+1 < len(vars); i += 2 {
		s = strings.ReplaceAll(s, "{"+vars[i]+"}", vars[i+1])
	}
	return s
}

func catalogue(lang string) map[string]string {
	if lang == EN {
		return en
	}
	return zh
}

// TypeName is an event type in words; an unknown type stays as it is.
func TypeName(lang, typ string) string {
	if s, ok := catalogue(lang)["type."+typ]; ok {
		return s
	}
	if s, ok := zh["type."+typ]; ok {
		return s
	}
	return typ
}

// Location renders building, unit and room the way the console does
// ("3 号楼 2 单元 201 室"), then the zone; "" when there is nothing.
func Location(lang string, l event.Location) string { return Places{}.Location(lang, l) }

// Places are configured labels for building and zone ids (config places)
// and for sources (cameras[].display_name); the zero value has none.
type Places struct {
	Buildings, Zones, Sources map[string]string
}

// Source is the label of a source id, else the id.
func (p Places) Source(id string) string {
	if s := p.Sources[id]; s != "" {
		return s
	}
	return id
}

// Location is the package Location with the labels: a labelled building
// or zone is written as its label.
func (p Places) Location(lang string, l event.Location) string {
	var parts []string
	if b := p.Buildings[l.Building]; b != "" {
		parts = append(parts, b)
	} else if l.Building != "" {
		parts = append(parts, T(lang, "loc.building", "v", l.Building))
	}
	for _, x := range [][2]string{{"loc.unit", l.Unit}, {"loc.room", l.Room}} {
		if x[1] != "" {
			parts = append(parts, T(lang, x[0], "v", x[1]))
		}
	}
	if z := p.Zones[l.Zone]; z != "" {
		parts = append(parts, z)
	} else if l.Zone != "" {
		parts = append(parts, l.Zone)
	}
	return strings.Join(parts, " ")
}

var zh = map[string]string{
	"prio.1":                          "生命安全",
	"prio.2":                          "治安",
	"prio.3":                          "一般",
	"sev.critical":                    "紧急",
	"sev.warning":                     "警告",
	"sev.info":                        "信息",
	"loc.building":                    "{v} 号楼",
	"loc.unit":                        "{v} 单元",
	"loc.room":                        "{v} 室",
	"loc.floor":                       "第 {v} 层",
	"loc.none":                        "位置未知",
	"kind.gas_detector":               "燃气探测器",
	"kind.gas_valve":                  "燃气阀门",
	"kind.wristband":                  "手环",
	"kind.perimeter":                  "周界",
	"kind.barrier_gate":               "道闸",
	"kind.siren":                      "声光报警器",
	"kind.camera":                     "摄像头",
	"kind.gateway":                    "网关",
	"type.gas.leak":                   "燃气泄漏",
	"type.gas.cleared":                "燃气恢复正常",
	"type.valve.closed":               "阀门已关闭",
	"type.valve.opened":               "阀门已打开",
	"type.valve.fault":                "阀门故障",
	"type.wristband.sos":              "手环求救",
	"type.wristband.fall":             "跌倒",
	"type.wristband.heart_rate":       "心率异常",
	"type.wristband.low_battery":      "手环电量低",
	"type.wristband.inactive":         "长时间无活动",
	"type.perimeter.intrusion":        "周界入侵",
	"type.perimeter.tamper":           "周界防拆",
	"type.gate.vehicle":               "车辆通行",
	"type.gate.denied":                "车辆被拒",
	"type.gate.fault":                 "道闸故障",
	"type.face.recognized":            "人脸识别",
	"type.face.unknown":               "陌生人",
	"type.face.watchlist":             "布控人员",
	"type.throw.detected":             "高空抛物",
	"type.camera.offline":             "摄像头离线",
	"type.camera.online":              "摄像头恢复",
	"type.device.offline":             "设备离线",
	"type.device.online":              "设备恢复",
	"type.device.fault":               "设备故障",
	"type.device.tamper":              "设备被拆",
	"type.device.low_battery":         "设备电量低",
	"type.motion.detected":            "移动侦测",
	"type.system.storage":             "存储告警",
	"type.system.deadletter":          "无法解析的消息",
	"type.system.fault":               "网关部件停用",
	"type.system.clock":               "网关时钟偏差",
	"type.alarm.opened":               "警报发生",
	"type.alarm.acknowledged":         "警报已确认",
	"type.alarm.resolved":             "警报已解除",
	"type.alarm.escalated":            "警报升级",
	"type.alarm.assigned":             "警报指派",
	"type.alarm.accepted":             "警报接单",
	"type.alarm.on_scene":             "到场处置",
	"type.media.added":                "证据已补充",
	"state.open":                      "未处理",
	"state.acknowledged":              "已确认",
	"state.resolved":                  "已解除",
	"notify.title":                    "【{prio}】{type}",
	"notify.where":                    "位置",
	"notify.time":                     "时间",
	"notify.source":                   "来源",
	"notify.state":                    "状态",
	"notify.count":                    "次数",
	"notify.escalated":                "已升级 L{n}，{after} 内无人确认",
	"notify.link":                     "在值班台查看",
	"notify.snapshot":                 "现场照片",
	"notify.action.opened":            "新警报",
	"notify.action.escalated":         "警报升级",
	"notify.action.acknowledged":      "警报已确认",
	"notify.action.resolved":          "警报已解除",
	"notify.by":                       "处理人",
	"notify.note":                     "说明",
	"notify.gateway":                  "网关",
	"alarm.floor":                     "第 {n} 层",
	"reason.storage.events":           "事件库无法写入（磁盘已满或故障），警报暂存于内存",
	"reason.storage.broker":           "MQTT 消息库无法写入（磁盘已满或故障）",
	"reason.storage.uplink_backlog":   "未上报的紧急事件超出存储上限，新事件被立即淘汰",
	"reason.face.disabled":            "人脸识别已停用：模型或人脸库密钥不可用（详见日志）",
	"reason.uplink.rejected_critical": "平台 {target} 拒收紧急事件（状态 {status}），持续重试中",
	"reason.clock.skew":               "网关时钟与视图库相差 {skew_seconds} 秒，证据时间不准，请校时",
}

var en = map[string]string{
	"prio.1":                          "Life safety",
	"prio.2":                          "Security",
	"prio.3":                          "Routine",
	"sev.critical":                    "Critical",
	"sev.warning":                     "Warning",
	"sev.info":                        "Info",
	"loc.building":                    "Bldg {v}",
	"loc.unit":                        "Unit {v}",
	"loc.room":                        "Room {v}",
	"loc.floor":                       "floor {v}",
	"loc.none":                        "Location unknown",
	"kind.gas_detector":               "Gas detector",
	"kind.gas_valve":                  "Gas valve",
	"kind.wristband":                  "Wristband",
	"kind.perimeter":                  "Perimeter sensor",
	"kind.barrier_gate":               "Barrier gate",
	"kind.siren":                      "Siren",
	"kind.camera":                     "Camera",
	"kind.gateway":                    "Gateway",
	"type.gas.leak":                   "Gas leak",
	"type.gas.cleared":                "Gas cleared",
	"type.valve.closed":               "Valve closed",
	"type.valve.opened":               "Valve opened",
	"type.valve.fault":                "Valve fault",
	"type.wristband.sos":              "SOS",
	"type.wristband.fall":             "Fall",
	"type.wristband.heart_rate":       "Abnormal heart rate",
	"type.wristband.low_battery":      "Wristband battery low",
	"type.wristband.inactive":         "Wearer inactive",
	"type.perimeter.intrusion":        "Perimeter intrusion",
	"type.perimeter.tamper":           "Perimeter tamper",
	"type.gate.vehicle":               "Vehicle at gate",
	"type.gate.denied":                "Vehicle denied",
	"type.gate.fault":                 "Gate fault",
	"type.face.recognized":            "Face recognised",
	"type.face.unknown":               "Unknown face",
	"type.face.watchlist":             "Watchlist face",
	"type.throw.detected":             "Object thrown from height",
	"type.camera.offline":             "Camera offline",
	"type.camera.online":              "Camera back online",
	"type.device.offline":             "Device offline",
	"type.device.online":              "Device back online",
	"type.device.fault":               "Device fault",
	"type.device.tamper":              "Device tampered",
	"type.device.low_battery":         "Device battery low",
	"type.motion.detected":            "Motion",
	"type.system.storage":             "Storage problem",
	"type.system.deadletter":          "Unreadable message",
	"type.system.fault":               "Gateway component disabled",
	"type.system.clock":               "Gateway clock is off",
	"type.alarm.opened":               "Alarm opened",
	"type.alarm.acknowledged":         "Alarm acknowledged",
	"type.alarm.resolved":             "Alarm resolved",
	"type.alarm.escalated":            "Alarm escalated",
	"type.alarm.assigned":             "Alarm assigned",
	"type.alarm.accepted":             "Alarm accepted",
	"type.alarm.on_scene":             "Guard on scene",
	"type.media.added":                "Evidence added",
	"state.open":                      "Open",
	"state.acknowledged":              "Acknowledged",
	"state.resolved":                  "Resolved",
	"notify.title":                    "[{prio}] {type}",
	"notify.where":                    "Where",
	"notify.time":                     "Time",
	"notify.source":                   "Source",
	"notify.state":                    "State",
	"notify.count":                    "Count",
	"notify.escalated":                "Escalated L{n}: not acknowledged within {after}",
	"notify.link":                     "Open in the console",
	"notify.snapshot":                 "Snapshot",
	"notify.action.opened":            "New alarm",
	"notify.action.escalated":         "Alarm escalated",
	"notify.action.acknowledged":      "Alarm acknowledged",
	"notify.action.resolved":          "Alarm resolved",
	"notify.by":                       "By",
	"notify.note":                     "Note",
	"notify.gateway":                  "Gateway",
	"alarm.floor":                     "floor {n}",
	"reason.storage.events":           "The event store cannot write (disk full or failing); alarms are held in memory",
	"reason.storage.broker":           "The MQTT message store cannot write (disk full or failing)",
	"reason.storage.uplink_backlog":   "Undelivered critical events exceed the store budget; new events are evicted at once",
	"reason.face.disabled":            "Face recognition is off: the model or the gallery key is not usable (see the log)",
	"reason.uplink.rejected_critical": "Platform {target} refuses a critical event (status {status}); retried until taken",
	"reason.clock.skew":               "The gateway clock is {skew_seconds} s off the view library's: evidence times are wrong; set the clock",
}
