package bus

import "github.com/smartcommunity/warden/drivers"

// CloseLikeKill closes b dropping uncommitted store writes, as kill -9 would.
func CloseLikeKill(b *Broker) { b.closeLikeKill() }

// MatchFilter exposes the MQTT filter matcher.
var MatchFilter = drivers.MatchFilter
