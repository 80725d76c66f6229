package gas

import (
	"fmt"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/drivers/internal/kit"
	"github.com/smartcommunity/warden/edge/config"
)

// MIoT properties of the Aqara natural gas detector JT-BZ-01AQ/A
// (lumi.sensor_gas.acn02) as Xiaomi Gateway3 forwards them raw:
// service 2, property 1 status (0 normal, 1 alarm), 2 fault (0 none),
// 3 concentration in %LEL.
const (
	miotSiid          = 2
	miotPiidStatus    = 1
	miotPiidFault     = 2
	miotPiidDensityPc = 3
)

// NewGateway3 builds a detector fed by Xiaomi Gateway3's raw MQTT reports
// ({"cmd":"report","did":"lumi.…","mi_spec":[{"siid":2,"piid":1,"value":0},…]}).
// The gateway publishes every device on one topic, so key did (the
// "lumi.…" id) selects this device's reports; without it every report on the
// topic is taken as this device's.
func NewGateway3(d config.Device) (drivers.Device, []config.Problem) {
	o := gateway3Options{Options: defaults()}
	if ps := kit.Decode(d, &o); len(ps) > 0 {
		return nil, ps
	}
	g, ps := common(d, o.Options)
	did := o.DID
	g.parse = func(obj map[string]any) (reading, bool, error) { return parseMIoT(obj, did) }
	if len(ps) > 0 {
		return nil, ps
	}
	return g, nil
}

func parseMIoT(obj map[string]any, did string) (reading, bool, error) {
	var r reading
	if did != "" {
		got, _, err := kit.String(obj, "did")
		if err != nil {
			return r, false, err
		}
		if got != did {
			return r, false, nil // another device on the gateway's topic
		}
	}
	raw, ok := kit.Get(obj, "mi_spec")
	if !ok {
		return r, false, nil // heartbeat or a report without properties
	}
	props, isList := raw.([]any)
	if !isList {
		return r, false, kit.WrongType("mi_spec", raw, "an array")
	}
	for i, p := range props {
		prop, isObj := p.(map[string]any)
		if !isObj {
			return r, false, kit.WrongType(fmt.Sprintf("mi_spec[%d]", i), p, "an object")
		}
		siid, _, err1 := kit.Number(prop, "siid")
		piid, _, err2 := kit.Number(prop, "piid")
		if err := firstErr(err1, err2); err != nil {
			return r, false, fmt.Errorf("mi_spec[%d]: %w", i, err)
		}
		if siid != miotSiid {
			continue
		}
		switch piid {
		case miotPiidStatus:
			v, ok, err := flagOrCode(prop)
			if err != nil || !ok {
				return r, false, fmt.Errorf("mi_spec[%d] (status): %w", i, orMissing(err))
			}
			switch v {
			case 0, 1:
				alarm := v == 1
				r.alarm = &alarm
			default:
				reason := fmt.Sprintf("status %v", v)
				r.fault = &reason
			}
		case miotPiidFault:
			v, ok, err := flagOrCode(prop)
			if err != nil || !ok {
				return r, false, fmt.Errorf("mi_spec[%d] (fault): %w", i, orMissing(err))
			}
			if r.fault == nil || v != 0 {
				reason := ""
				if v != 0 {
					reason = fmt.Sprintf("fault code %v", v)
				}
				r.fault = &reason
			}
		case miotPiidDensityPc:
			v, ok, err := kit.Number(prop, "value")
			if err != nil || !ok {
				return r, false, fmt.Errorf("mi_spec[%d] (concentration): %w", i, orMissing(err))
			}
			r.lel = &v
		}
	}
	return r, true, nil
}

// flagOrCode reads a MIoT value that may be a boolean or an integer code.
func flagOrCode(prop map[string]any) (float64, bool, error) {
	if b, ok := prop["value"].(bool); ok {
		if b {
			return 1, true, nil
		}
		return 0, true, nil
	}
	return kit.Number(prop, "value")
}

func orMissing(err error) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: no \"value\"", drivers.ErrBadPayload)
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
