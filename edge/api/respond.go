package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Error is the JSON error body of every failed request:
// {"error":"human message","code":"machine_code"}.
type Error struct {
	Status  int    `json:"-"`
	Message string `json:"error"`
	Code    string `json:"code"`
}

func (e *Error) Error() string { return e.Message }

// Error codes.
const (
	CodeBadRequest   = "bad_request"
	CodeUnauthorized = "unauthorized"
	CodeForbidden    = "forbidden"
	CodeNotFound     = "not_found"
	CodeMethod       = "method_not_allowed"
	CodeTooLarge     = "too_large"
	CodeInternal     = "internal"
	CodeUnavailable  = "unavailable"
	CodeNotReady     = "not_ready"
)

// Errorf builds an *Error.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		WriteError(w, Errorf(http.StatusInternalServerError, CodeInternal, "encode response: %v", err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// WriteError writes err as the JSON error body; a non-*Error becomes a 500.
func WriteError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = Errorf(http.StatusInternalServerError, CodeInternal, "internal error")
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(e.Status)
	b, _ := json.Marshal(e)
	_, _ = w.Write(append(b, '\n'))
}

// DecodeJSON decodes one JSON value from the (size-limited) request body into
// v, rejecting unknown fields. Errors are *Error: 413 when the body is over
// the limit, 400 otherwise. For handlers mounted with Server.Handle.
func DecodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return Errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "request body is over %d bytes", tooBig.Limit)
		}
		if errors.Is(err, io.EOF) {
			return Errorf(http.StatusBadRequest, CodeBadRequest, "request body is empty")
		}
		return Errorf(http.StatusBadRequest, CodeBadRequest, "request body: %v", err)
	}
	if dec.More() {
		return Errorf(http.StatusBadRequest, CodeBadRequest, "request body: more than one JSON value")
	}
	return nil
}
