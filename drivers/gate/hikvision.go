package gate

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/drivers/internal/kit"
	"github.com/smartcommunity/warden/edge/config"
)

// NewHikvision builds a gate for plate-camera push JSON. Two shapes:
//
//   - AlarmInfoPlate (Vzenith/Zhenshi/Alphadigi family, also in their MQTT
//     "ivs_result" envelope): AlarmInfoPlate.result.PlateResult.{license,
//     direction (numeric code), confidence}.
//   - Hikvision ISAPI ANPR: ANPR.{licensePlate, direction, confidenceLevel}.
//
// Direction codes are motion in the image, not in/out, so they mean
// nothing until mapped by direction_map (e.g. {"1": in, "2": out}) or
// overridden by a fixed direction for a one-way lane.
func NewHikvision(d config.Device) (drivers.Device, []config.Problem) {
	g, ps := newGate(d, map[string]string{})
	if len(ps) > 0 {
		return nil, ps
	}
	g.parse = parseHikvision
	return g, nil
}

func parseHikvision(obj map[string]any) (plateReading, bool, error) {
	if _, ok := kit.Get(obj, "AlarmInfoPlate"); ok {
		pr, ok := kit.Get(obj, "AlarmInfoPlate.result.PlateResult")
		if !ok {
			return plateReading{}, false, fmt.Errorf("%w: AlarmInfoPlate without result.PlateResult", drivers.ErrBadPayload)
		}
		res, isObj := pr.(map[string]any)
		if !isObj {
			return plateReading{}, false, kit.WrongType("AlarmInfoPlate.result.PlateResult", pr, "an object")
		}
		r, ok, err := plateFields(res, "license", "direction", "confidence")
		if err == nil {
			r.color, err = vzColor(res)
			r.pictures, r.pictureErr = pictures(res, "imageFile", "imageFragmentFile")
		}
		return r, ok, err
	}
	if raw, ok := kit.Get(obj, "ANPR"); ok {
		res, isObj := raw.(map[string]any)
		if !isObj {
			return plateReading{}, false, kit.WrongType("ANPR", raw, "an object")
		}
		r, ok, err := plateFields(res, "licensePlate", "direction", "confidenceLevel")
		if err == nil {
			r.color, err = colorName(res, "plateColor")
		}
		return r, ok, err
	}
	// Heartbeats and other messages on the camera's topic.
	return plateReading{}, false, nil
}

func plateFields(res map[string]any, plateF, dirF, confF string) (plateReading, bool, error) {
	var r plateReading
	var errs kit.Errs
	plate, hasPlate, err := kit.String(res, plateF)
	errs.Keep(err)
	r.plate = strings.TrimSpace(plate)
	if raw, ok := kit.Get(res, dirF); ok {
		switch v := raw.(type) {
		case float64:
			r.direction = strconv.FormatFloat(v, 'f', -1, 64)
		case string:
			s, _, err := kit.String(res, dirF)
			errs.Keep(err)
			r.direction = strings.ToLower(s)
		default:
			errs.Keep(kit.WrongType(dirF, raw, "a number or a string"))
		}
	}
	if v, ok, err := kit.Number(res, confF); ok {
		r.confidence = &v
	} else {
		errs.Keep(err)
	}
	if err := errs.Err(); err != nil {
		return plateReading{}, false, err
	}
	if !hasPlate {
		return r, false, fmt.Errorf("%w: plate result without %q", drivers.ErrBadPayload, plateF)
	}
	return r, true, nil
}

// vzColor reads AlarmInfoPlate's colorType: 1 blue, 2 yellow, 3 white,
// 4 black, 5 green; 0 (or absent) unknown.
func vzColor(res map[string]any) (string, error) {
	v, ok, err := kit.Number(res, "colorType")
	if !ok || err != nil {
		return "", err
	}
	switch v {
	case 0:
		return "", nil
	case 1:
		return "blue", nil
	case 2:
		return "yellow", nil
	case 3:
		return "white", nil
	case 4:
		return "black", nil
	case 5:
		return "green", nil
	}
	return "other", nil
}
