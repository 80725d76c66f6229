// Package all links every device driver into the binary: the gateway
// imports it for the drivers' registrations.
package all

import (
	_ "github.com/smartcommunity/warden/drivers/gas"
	_ "github.com/smartcommunity/warden/drivers/gate"
	_ "github.com/smartcommunity/warden/drivers/generic_json"
	_ "github.com/smartcommunity/warden/drivers/perimeter"
	_ "github.com/smartcommunity/warden/drivers/siren"
	_ "github.com/smartcommunity/warden/drivers/valve"
	_ "github.com/smartcommunity/warden/drivers/wristband"
)
