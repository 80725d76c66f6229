// Package viid is the wire format of GA/T 1400 (公安视频图像信息应用系统,
// the "view library" 视图库): registration objects, face and motor-vehicle
// objects, their images, the 41/48-digit identifiers and the platform's
// status replies. It knows nothing about Warden's events.
package viid

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// ContentType is what every request carries.
const ContentType = "application/VIID+JSON"

// Paths on the platform.
const (
	PathRegister   = "/VIID/System/Register"
	PathKeepalive  = "/VIID/System/Keepalive"
	PathUnRegister = "/VIID/System/UnRegister"
	PathTime       = "/VIID/System/Time"
	PathFaces      = "/VIID/Faces"
	PathVehicles   = "/VIID/MotorVehicles"
)

// TimeLayout is GA/T 1400's yyyyMMddHHmmss, in local time.
const TimeLayout = "20060102150405"

var deviceID = regexp.MustCompile(`^[0-9]{20}$`)

// ValidDeviceID reports whether id is a 20-digit device code.
func ValidDeviceID(id string) bool { return deviceID.MatchString(id) }

// Time formats t in loc as yyyyMMddHHmmss.
func Time(t time.Time, loc *time.Location) string { return t.In(loc).Format(TimeLayout) }

// Type codes inside identifiers (GA/T 1400.1, 视频图像信息基本要素 and
// 视频图像对象).
const (
	SourceImage  = "02" // the picture an object was cut from
	ObjectFace   = "06"
	ObjectMotorV = "02"
)

// SourceID is the 41-digit id of an image: device code, type, time and a
// 5-digit sequence. seq is taken modulo 100000.
func SourceID(device, typ string, t time.Time, loc *time.Location, seq uint64) string {
	return fmt.Sprintf("%s%s%s%05d", device, typ, Time(t, loc), seq%100000)
}

// ObjectID is the 48-digit id of an object in source image src.
func ObjectID(src, typ string, n int) string { return fmt.Sprintf("%s%s%05d", src, typ, n%100000) }

// Image types of SubImageInfo.Type.
const (
	ImageVehicle = "01" // 车辆大图
	ImagePlate   = "02" // 车牌彩色小图
	ImageFace    = "11" // 人脸图
	ImageScene   = "14" // 场景图
)

// SubImage is one picture of an object (SubImageInfo).
type SubImage struct {
	ImageID     string `json:"ImageID"`
	EventSort   int    `json:"EventSort"`
	DeviceID    string `json:"DeviceID"`
	StoragePath string `json:"StoragePath"`
	Type        string `json:"Type"`
	FileFormat  string `json:"FileFormat"`
	ShotTime    string `json:"ShotTime"`
	Width       int    `json:"Width"`
	Height      int    `json:"Height"`
	Data        []byte `json:"Data"` // base64 in JSON
}

// SubImageList wraps a face's or vehicle's pictures.
type SubImageList struct {
	SubImageInfoObject []SubImage `json:"SubImageInfoObject"`
}

// Face is a FaceObject.
type Face struct {
	FaceID            string        `json:"FaceID"`
	InfoKind          int           `json:"InfoKind"` // 1 = captured automatically
	SourceID          string        `json:"SourceID"`
	DeviceID          string        `json:"DeviceID"`
	LeftTopX          int           `json:"LeftTopX"`
	LeftTopY          int           `json:"LeftTopY"`
	RightBtmX         int           `json:"RightBtmX"`
	RightBtmY         int           `json:"RightBtmY"`
	ShotTime          string        `json:"ShotTime"`
	FaceAppearTime    string        `json:"FaceAppearTime"`
	FaceDisAppearTime string        `json:"FaceDisAppearTime,omitempty"`
	Name              string        `json:"Name,omitempty"`
	SimilarityDegree  float64       `json:"SimilarityDegree,omitempty"`
	SubImageList      *SubImageList `json:"SubImageList,omitempty"`
}

// FaceList is the body of POST /VIID/Faces.
type FaceList struct {
	FaceListObject struct {
		FaceObject []Face `json:"FaceObject"`
	} `json:"FaceListObject"`
}

// MotorVehicle is a MotorVehicleObject.
type MotorVehicle struct {
	MotorVehicleID string        `json:"MotorVehicleID"`
	InfoKind       int           `json:"InfoKind"`
	SourceID       string        `json:"SourceID"`
	DeviceID       string        `json:"DeviceID"`
	PassTime       string        `json:"PassTime"`
	HasPlate       bool          `json:"HasPlate"`
	PlateNo        string        `json:"PlateNo,omitempty"`
	PlateColor     string        `json:"PlateColor,omitempty"` // GA 24.8 colour code
	Direction      string        `json:"Direction,omitempty"`  // entry or exit
	LeftTopX       int           `json:"LeftTopX"`
	LeftTopY       int           `json:"LeftTopY"`
	RightBtmX      int           `json:"RightBtmX"`
	RightBtmY      int           `json:"RightBtmY"`
	SubImageList   *SubImageList `json:"SubImageList,omitempty"`
}

// MotorVehicleList is the body of POST /VIID/MotorVehicles.
type MotorVehicleList struct {
	MotorVehicleListObject struct {
		MotorVehicleObject []MotorVehicle `json:"MotorVehicleObject"`
	} `json:"MotorVehicleListObject"`
}

// PlateColor maps a colour name to its GA 24.8 code ("" when unknown).
func PlateColor(name string) string {
	switch name {
	case "black":
		return "1"
	case "white":
		return "2"
	case "blue":
		return "5"
	case "yellow":
		return "6"
	case "green":
		return "9"
	case "":
		return ""
	}
	return "99"
}

// Register, Keepalive and UnRegister bodies.
func Register(device string) any {
	return map[string]any{"RegisterObject": map[string]string{"DeviceID": device}}
}
func Keepalive(device string) any {
	return map[string]any{"KeepaliveObject": map[string]string{"DeviceID": device}}
}
func UnRegister(device string) any {
	return map[string]any{"UnRegisterObject": map[string]string{"DeviceID": device}}
}

// Status is a ResponseStatusObject. StatusCode "0" is success.
type Status struct {
	RequestURL   string `json:"RequestURL"`
	StatusCode   Code   `json:"StatusCode"`
	StatusString string `json:"StatusString"`
	ID           string `json:"Id"`
	LocalTime    string `json:"LocalTime"`
}

// OK reports success.
func (s Status) OK() bool { return s.StatusCode == "0" }

// Code is a status code sent as a string or a number.
type Code string

func (c *Code) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*c = Code(s)
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("StatusCode %s: not a number or a string", b)
	}
	*c = Code(strconv.FormatInt(n, 10))
	return nil
}

// ParseStatuses reads a reply: a ResponseStatusObject or a
// ResponseStatusListObject (the platform may send either for a list).
func ParseStatuses(body []byte) ([]Status, error) {
	var r struct {
		One  *Status `json:"ResponseStatusObject"`
		List *struct {
			Objects []Status `json:"ResponseStatusObject"`
		} `json:"ResponseStatusListObject"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("reply is not a GA/T 1400 status: %w", err)
	}
	switch {
	case r.List != nil:
		return r.List.Objects, nil
	case r.One != nil:
		return []Status{*r.One}, nil
	}
	return nil, fmt.Errorf("reply has neither ResponseStatusObject nor ResponseStatusListObject")
}

// SystemTime is the reply of GET /VIID/System/Time.
type SystemTime struct {
	SystemTimeObject struct {
		VIIDServerID string `json:"VIIDServerID"`
		TimeMode     string `json:"TimeMode"`
		LocalTime    string `json:"LocalTime"`
		TimeZone     string `json:"TimeZone"`
	} `json:"SystemTimeObject"`
}

// ParseLocalTime reads LocalTime (yyyyMMddHHmmss, or with milliseconds) in loc.
func ParseLocalTime(s string, loc *time.Location) (time.Time, error) {
	switch len(s) {
	case 14:
		return time.ParseInLocation(TimeLayout, s, loc)
	case 17: // with milliseconds
		return time.ParseInLocation(TimeLayout, s[:14], loc)
	}
	return time.Time{}, fmt.Errorf("LocalTime %q is not yyyyMMddHHmmss", s)
}
