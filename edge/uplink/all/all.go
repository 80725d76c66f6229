// Package all links every uplink target kind into a binary: the gateway
// imports it for its side effect, as drivers/all does for drivers.
package all

import (
	_ "github.com/smartcommunity/warden/edge/uplink/gat1400" // GA/T 1400 view library
	_ "github.com/smartcommunity/warden/edge/uplink/http"    // HTTP POST and media
	_ "github.com/smartcommunity/warden/edge/uplink/mqtt"    // MQTT QoS 1
)
