package notify

import (
	"fmt"
	"slices"
	"sync"

	"github.com/smartcommunity/warden/edge/config"
)

// Kind is one kind of notify target (wecom, dingtalk, webhook, sms_http).
// Its package registers it from init; edge/notify/all links every kind in.
// Its name is also in config.NotifyKinds, which check-config validates
// against (a test holds the two lists equal).
type Kind struct {
	Name string
	// New makes the sender of one configured target.
	New func(c config.NotifyTarget, e Env) (Sender, error)
}

// Env is what a kind's sender gets from the notifier.
type Env struct {
	Poster Poster // the notifier's client with the target's headers
	Media  Media  // the alarm's pictures (nil: none)
}

var (
	kindsMu sync.Mutex
	kinds   = map[string]Kind{}
)

// Register adds a kind; a second one of the same name panics.
func Register(k Kind) {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	if k.Name == "" || k.New == nil {
		panic("notify: Register needs a name and New")
	}
	if _, dup := kinds[k.Name]; dup {
		panic(fmt.Sprintf("notify: kind %q registered twice", k.Name))
	}
	kinds[k.Name] = k
}

// Kinds lists the registered kinds' names, sorted.
func Kinds() []string {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	var out []string
	for name := range kinds {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// newSender makes the sender of target c by its kind. A kind that is
// valid config but not linked into this binary is an error, not a target
// that silently sends nothing.
func newSender(c config.NotifyTarget, o Options) (Sender, error) {
	kindsMu.Lock()
	k, ok := kinds[c.Kind]
	kindsMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("kind %q is not linked into this binary (import edge/notify/all)", c.Kind)
	}
	return k.New(c, Env{Poster: Poster{Client: o.Client, Headers: c.Headers}, Media: o.Media})
}
