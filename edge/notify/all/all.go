// Package all links every notify target kind into a binary: the gateway
// imports it for its side effect, as drivers/all does for drivers.
package all

import (
	_ "github.com/smartcommunity/warden/edge/notify/dingtalk" // DingTalk group robot
	_ "github.com/smartcommunity/warden/edge/notify/smshttp"  // SMS/voice gateway over HTTP
	_ "github.com/smartcommunity/warden/edge/notify/webhook"  // generic signed webhook
	_ "github.com/smartcommunity/warden/edge/notify/wecom"    // WeCom group robot
)
