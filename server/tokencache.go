package server

import (
	"context"
	"sync"
	"time"

	"github.com/ferrydr/ferry"
)

// DefaultTokenTTL is how long a checked token is trusted without reading
// the store again. Checking a token read the store twice per request (the
// lookup and the last-use update), which under load cost more than most
// answers. The price is this bound on revocation: a token revoked through
// another API process, or in the store directly, is refused by this
// process within DefaultTokenTTL; revoked through this process, at once
// (docs/security.md).
const DefaultTokenTTL = 2 * time.Second

// maxCachedTokens bounds the cache; only valid tokens enter it, so it
// holds at most the active tokens that called within the TTL.
const maxCachedTokens = 10000

// tokenCache keeps the tokens the store returned for a hash, for ttl. Only
// tokens found active are kept: an unknown, revoked or expired token reads
// the store every time, so a cache never refuses what the store accepts.
type tokenCache struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[string]tokenEntry // by the token's hash
}

type tokenEntry struct {
	tok ferry.Token
	at  time.Time
}

func newTokenCache(ttl time.Duration) *tokenCache {
	return &tokenCache{ttl: ttl, now: time.Now, entries: map[string]tokenEntry{}}
}

// byHash returns the token with hash: kept if read within ttl, else from
// lookup. read says whether the store was read (so the caller records the
// token's use at most once per ttl).
func (c *tokenCache) byHash(ctx context.Context, hash []byte, lookup func(context.Context, []byte) (ferry.Token, error)) (tok ferry.Token, read bool, err error) {
	key := string(hash)
	if c.ttl > 0 {
		c.mu.Lock()
		e, ok := c.entries[key]
		c.mu.Unlock()
		if ok && c.now().Sub(e.at) < c.ttl {
			return e.tok, false, nil
		}
	}
	at := c.now()
	tok, err = lookup(ctx, hash)
	if err != nil || c.ttl <= 0 || tok.RevokedAt != nil || (tok.ExpiresAt != nil && !at.Before(*tok.ExpiresAt)) {
		return tok, true, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxCachedTokens {
		for k, e := range c.entries {
			if at.Sub(e.at) >= c.ttl {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= maxCachedTokens {
			clear(c.entries)
		}
	}
	c.entries[key] = tokenEntry{tok: tok, at: at}
	return tok, true, nil
}

// forget drops the token with the given id, revoked through this process:
// its next use reads the store.
func (c *tokenCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		if e.tok.ID == id {
			delete(c.entries, k)
		}
	}
}
