package api

import "net/http"

// Handlers are the handlers the domain packages expose; routes declares
// where each is served and for which role. A nil handler leaves its route
// out (no face gallery: no gallery routes).
type Handlers struct {
	Alarms      AlarmHandlers
	Gate        GateHandlers
	Actions     ActionHandlers
	Zones       ZoneHandlers
	Gallery     GalleryHandlers
	Console     ConsoleHandlers
	Live        LiveHandlers
	Calibration CalibrationHandlers
	Places      http.Handler // the words for buildings, zones and cameras
	Uplink      http.Handler // the uplink targets' status
}

// AlarmHandlers are edge/alarm's (Manager.HTTP).
type AlarmHandlers struct{ List, Stats, Duty, Get, Ack, Resolve, Assign, Accept, OnScene http.Handler }

// GateHandlers are edge/gate's visitor passes (Controller.HTTP).
type GateHandlers struct{ CreatePass, ListPasses, DeletePass http.Handler }

// ActionHandlers are edge/action's (Actuators.HTTP).
type ActionHandlers struct{ Command, Audit http.Handler }

// ZoneHandlers are edge/zones' arming areas (Zones.HTTP).
type ZoneHandlers struct{ List, Arm, Disarm, Auto http.Handler }

// GalleryHandlers are edge/gallery's (Gallery.HTTP).
type GalleryHandlers struct{ UnknownCrop, UnknownScene, List, Enrol, Remove http.Handler }

// LiveHandlers are edge/liveview's WHEP offer and session end (Server.HTTP).
// HLSH264 is the camera's H.264 stream over LL-HLS (the sub-stream of an
// H.265 camera).
type LiveHandlers struct{ Offer, Stop, HLS, HLSH264 http.Handler }

// CalibrationHandlers are edge/calibrate's throw camera calibration
// (Calibrator.HTTP).
type CalibrationHandlers struct{ Get, Put, Test http.Handler }

// ConsoleHandlers are edge/console's page and sessions (Console.HTTP).
type ConsoleHandlers struct{ Index, Asset, Login, WhoAmI, Logout http.Handler }

type route struct {
	pattern string
	role    Role
	h       http.Handler
}

// routes is every route of the gateway, in one table.
func (s *Server) routes(h Handlers) []route {
	metricsRole := RolePlatform
	if s.opts.MetricsPublic {
		metricsRole = RolePublic
	}
	return []route{
		{"GET /healthz", RolePublic, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		})},
		{"GET /readyz", RolePublic, http.HandlerFunc(s.readyz)},
		{"GET /metrics", metricsRole, s.metricsHandler()},

		{"GET /api/v1/events", RolePlatform, http.HandlerFunc(s.listEvents)},
		{"GET /api/v1/events/stream", RolePlatform, http.HandlerFunc(s.stream)},
		{"GET /api/v1/media/{id}", RolePlatform, http.HandlerFunc(s.media)},
		{"GET /api/v1/devices", RolePlatform, http.HandlerFunc(s.devices)},
		{"POST /api/v1/devices/{id}/command", RoleGuard, h.Actions.Command},
		{"GET /api/v1/cameras", RolePlatform, http.HandlerFunc(s.cameras)},
		{"GET /api/v1/cameras/{id}/snapshot", RolePlatform, http.HandlerFunc(s.snapshot)},
		{"GET /api/v1/cameras/{id}/recent.mp4", RoleGuard, http.HandlerFunc(s.recent)},
		{"POST /api/v1/cameras/{id}/whep", RoleGuard, h.Live.Offer},
		{"DELETE /api/v1/cameras/{id}/whep/{session}", RoleGuard, h.Live.Stop},
		{"GET /api/v1/cameras/{id}/live/{file}", RoleGuard, h.Live.HLS},
		{"GET /api/v1/cameras/{id}/live/h264/{file}", RoleGuard, h.Live.HLSH264},
		{"GET /api/v1/cameras/{id}/calibration", RoleAdmin, h.Calibration.Get},
		{"PUT /api/v1/cameras/{id}/calibration", RoleAdmin, h.Calibration.Put},
		{"POST /api/v1/cameras/{id}/calibration/test", RoleAdmin, h.Calibration.Test},
		{"GET /api/v1/places", RolePlatform, h.Places},
		{"GET /api/v1/uplink", RolePlatform, h.Uplink},
		{"GET /api/v1/deadletters", RoleAdmin, http.HandlerFunc(s.deadLetters)},
		{"GET /api/v1/audit", RoleAdmin, h.Actions.Audit},

		{"GET /api/v1/alarms", RolePlatform, h.Alarms.List},
		{"GET /api/v1/alarms/stats", RolePlatform, h.Alarms.Stats},
		{"GET /api/v1/alarms/duty", RoleGuard, h.Alarms.Duty},
		{"GET /api/v1/alarms/{id}", RolePlatform, h.Alarms.Get},
		{"POST /api/v1/alarms/{id}/ack", RoleGuard, h.Alarms.Ack},
		{"POST /api/v1/alarms/{id}/resolve", RoleGuard, h.Alarms.Resolve},
		{"POST /api/v1/alarms/{id}/assign", RoleGuard, h.Alarms.Assign},
		{"POST /api/v1/alarms/{id}/accept", RoleGuard, h.Alarms.Accept},
		{"POST /api/v1/alarms/{id}/onscene", RoleGuard, h.Alarms.OnScene},

		{"GET /api/v1/zones", RolePlatform, h.Zones.List},
		{"POST /api/v1/zones/{name}/arm", RoleGuard, h.Zones.Arm},
		{"POST /api/v1/zones/{name}/disarm", RoleGuard, h.Zones.Disarm},
		{"POST /api/v1/zones/{name}/auto", RoleGuard, h.Zones.Auto},

		{"POST /api/v1/gate/passes", RoleGuard, h.Gate.CreatePass},
		{"GET /api/v1/gate/passes", RoleGuard, h.Gate.ListPasses},
		{"DELETE /api/v1/gate/passes/{id}", RoleGuard, h.Gate.DeletePass},

		{"GET /api/v1/faces/unknown/{id}", RoleGuard, h.Gallery.UnknownCrop},
		{"GET /api/v1/faces/unknown/{id}/scene", RoleGuard, h.Gallery.UnknownScene},
		{"GET /api/v1/gallery", RoleAdmin, h.Gallery.List},
		{"POST /api/v1/gallery", RoleAdmin, h.Gallery.Enrol},
		{"DELETE /api/v1/gallery/{id}", RoleAdmin, h.Gallery.Remove},

		{"GET /{$}", RolePublic, h.Console.Index},
		{"GET /console/{file}", RolePublic, h.Console.Asset},
		{"POST /api/v1/session", RolePublic, h.Console.Login},
		{"GET /api/v1/session", RolePlatform, h.Console.WhoAmI},
		{"DELETE /api/v1/session", RolePlatform, h.Console.Logout},
	}
}

// Mount serves the routes whose handlers h has (the server's own are
// served from New on). It may be called more than once, each time with
// more handlers; call it before Serve.
func (s *Server) Mount(h Handlers) {
	for _, r := range s.routes(h) {
		if r.h == nil || s.mounted[r.pattern] {
			continue
		}
		s.mounted[r.pattern] = true
		s.Handle(r.pattern, r.role, r.h)
	}
}
