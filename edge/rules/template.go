package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"text/template"
)

// maxRendered bounds a rendered topic or payload.
const maxRendered = 256 << 10

func render(t *template.Template, v *View) (string, error) {
	var b bytes.Buffer
	if err := t.Execute(&b, v); err != nil {
		return "", err
	}
	if b.Len() > maxRendered {
		return "", fmt.Errorf("rendered %d bytes, over %d", b.Len(), maxRendered)
	}
	return b.String(), nil
}

func toJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
