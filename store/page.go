package store

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/ferrydr/ferry"
)

// Page limits.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 1000
)

const (
	nameTokenPrefix = "n1:"
	runTokenPrefix  = "r1:"
)

// pageLimit returns the effective limit of p: the default when unset, at
// most MaxPageLimit.
func pageLimit(p ferry.Page) int {
	switch {
	case p.Limit <= 0:
		return DefaultPageLimit
	case p.Limit > MaxPageLimit:
		return MaxPageLimit
	}
	return p.Limit
}

func badToken() error {
	return ferry.Invalid("page_token", "malformed page token")
}

func encodeToken(s string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

func decodeToken(tok, prefix string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", badToken()
	}
	s, ok := strings.CutPrefix(string(b), prefix)
	if !ok {
		return "", badToken()
	}
	return s, nil
}

// nameToken is the token of a page that ends with the item called name.
func nameToken(name string) string { return encodeToken(nameTokenPrefix + name) }

// afterName decodes a name-ordered page token: the name of the last item
// seen, "" for the first page.
func afterName(tok string) (string, error) {
	if tok == "" {
		return "", nil
	}
	name, err := decodeToken(tok, nameTokenPrefix)
	if err != nil {
		return "", err
	}
	if name == "" {
		return "", badToken()
	}
	return name, nil
}

// runToken is the token of a runs page that ends with the run (created, id).
func runToken(created time.Time, id string) string {
	return encodeToken(runTokenPrefix + strconv.FormatInt(created.UnixMicro(), 10) + ":" + id)
}

// afterRun decodes a runs page token; ok is false for the first page.
func afterRun(tok string) (created time.Time, id string, ok bool, err error) {
	if tok == "" {
		return time.Time{}, "", false, nil
	}
	s, err := decodeToken(tok, runTokenPrefix)
	if err != nil {
		return time.Time{}, "", false, err
	}
	us, id, found := strings.Cut(s, ":")
	if !found || id == "" {
		return time.Time{}, "", false, badToken()
	}
	n, err := strconv.ParseInt(us, 10, 64)
	if err != nil {
		return time.Time{}, "", false, badToken()
	}
	return time.UnixMicro(n).UTC(), id, true, nil
}
