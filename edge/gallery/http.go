package gallery

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/smartcommunity/warden/edge/api"
)

// Embedder turns one image into a template; it fails when the image holds
// no face, more than one, or one of too low quality. face.Engine does it.
type Embedder interface {
	Template(img []byte, source string) (Template, error)
}

// HTTP is the gallery's handlers (edge/api/routes.go serves them):
//
//	List    {"persons":[…]}
//	Enrol   multipart (person, name, group, image…)
//	        or JSON {"person","name","group","images":[base64…]}
//	Remove  a person with templates and crops
//
// and UnknownCrop, UnknownScene: an unknown face's crop and its scene,
// decrypted on the fly (the files on disk are sealed).
func (g *Gallery) HTTP(e Embedder) api.GalleryHandlers {
	return api.GalleryHandlers{
		UnknownCrop:  http.HandlerFunc(g.httpUnknown(g.UnknownCrop, "crop")),
		UnknownScene: http.HandlerFunc(g.httpUnknown(g.UnknownScene, "scene")),
		List:         http.HandlerFunc(g.httpList),
		Enrol:        http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.httpEnroll(w, r, e) }),
		Remove:       http.HandlerFunc(g.httpRemove),
	}
}

func actor(r *http.Request) string {
	if p, ok := api.PrincipalFrom(r.Context()); ok {
		return p.Name
	}
	return "api"
}

func (g *Gallery) httpList(w http.ResponseWriter, r *http.Request) {
	ps, err := g.List()
	if err != nil {
		api.WriteError(w, err)
		return
	}
	if ps == nil {
		ps = []Person{}
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"persons": ps})
}

type enrolReq struct {
	Person string   `json:"person"`
	Name   string   `json:"name"`
	Group  string   `json:"group"`
	Images []string `json:"images"`
}

type namedImage struct {
	name string
	data []byte
}

func (g *Gallery) httpEnroll(w http.ResponseWriter, r *http.Request, e Embedder) {
	var req enrolReq
	var imgs []namedImage
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		if err := r.ParseMultipartForm(8 << 20); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				api.WriteError(w, api.Errorf(http.StatusRequestEntityTooLarge, api.CodeTooLarge, "body over %d bytes", mbe.Limit))
				return
			}
			api.WriteError(w, api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "multipart: %v", err))
			return
		}
		req.Person, req.Name, req.Group = r.FormValue("person"), r.FormValue("name"), r.FormValue("group")
		for _, fh := range r.MultipartForm.File["image"] {
			f, err := fh.Open()
			if err != nil {
				api.WriteError(w, api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "image %s: %v", fh.Filename, err))
				return
			}
			b, err := io.ReadAll(f)
			f.Close()
			if err != nil {
				api.WriteError(w, api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "image %s: %v", fh.Filename, err))
				return
			}
			imgs = append(imgs, namedImage{fh.Filename, b})
		}
	} else {
		if err := api.DecodeJSON(r, &req); err != nil {
			api.WriteError(w, err)
			return
		}
		for i, s := range req.Images {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				api.WriteError(w, api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "images[%d]: not base64: %v", i, err))
				return
			}
			imgs = append(imgs, namedImage{fmt.Sprintf("images[%d]", i), b})
		}
	}
	if err := ValidID(req.Person); err != nil {
		api.WriteError(w, api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "%v", err))
		return
	}
	grp, err := ParseGroup(req.Group)
	if err != nil {
		api.WriteError(w, api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "%v", err))
		return
	}
	if len(imgs) == 0 {
		api.WriteError(w, api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "no image"))
		return
	}
	if e == nil {
		api.WriteError(w, api.Errorf(http.StatusServiceUnavailable, api.CodeUnavailable, "no face model configured"))
		return
	}
	var tpls []Template
	for _, im := range imgs {
		t, err := e.Template(im.data, im.name)
		if err != nil {
			api.WriteError(w, api.Errorf(http.StatusUnprocessableEntity, api.CodeBadRequest, "%s: %v", im.name, err))
			return
		}
		tpls = append(tpls, t)
	}
	if th, ok := e.(interface{ Threshold() float64 }); ok {
		if err := g.CheckConflicts(req.Person, tpls, th.Threshold()); err != nil {
			if errors.Is(err, ErrLooksLikeOther) {
				api.WriteError(w, api.Errorf(http.StatusUnprocessableEntity, api.CodeBadRequest, "%v: not enrolled", err))
			} else {
				api.WriteError(w, err)
			}
			return
		}
	}
	p, err := g.Enroll(actor(r), Person{ID: req.Person, Name: req.Name, Group: grp}, tpls)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	api.WriteJSON(w, http.StatusCreated, p)
}

func (g *Gallery) httpRemove(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := g.Remove(actor(r), id); err != nil {
		if errors.Is(err, ErrNotFound) {
			api.WriteError(w, api.Errorf(http.StatusNotFound, api.CodeNotFound, "person %s not found", id))
			return
		}
		api.WriteError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// UnknownCropURL is where guards see an unknown face's crop.
func UnknownCropURL(id string) string { return "/api/v1/faces/unknown/" + id }

// UnknownSceneURL is where guards see the scene of an unknown face's crop.
func UnknownSceneURL(id string) string { return UnknownCropURL(id) + "/scene" }

// httpUnknown serves a sealed picture of an unknown face, decrypted.
func (g *Gallery) httpUnknown(read func(id string) ([]byte, error), what string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		jpeg, err := read(r.PathValue("id"))
		if errors.Is(err, os.ErrNotExist) {
			api.WriteError(w, api.Errorf(http.StatusNotFound, api.CodeNotFound, "no unknown-face %s %q (deleted by retention?)", what, r.PathValue("id")))
			return
		}
		if err != nil {
			api.WriteError(w, err)
			return
		}
		w.Header().Set("Content-Type", "image/jpeg")
		w.Header().Set("Cache-Control", "private, no-store")
		_, _ = w.Write(jpeg)
	}
}
