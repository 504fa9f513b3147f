package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"time"
)

// cachedToken is a token and the endpoint its service catalog named, kept
// in the user's cache directory until it expires. The API key never is.
type cachedToken struct {
	ID       string    `json:"id"`
	Expires  time.Time `json:"expires"`
	Obtained time.Time `json:"obtained"`
	Tenant   string    `json:"tenant"`
	Endpoint string    `json:"endpoint"`
}

// valid says whether the token will still be good for a while: a tenth
// of its lifetime, at most 30 s, is kept as a margin for clock skew and
// slow requests.
func (t *cachedToken) valid(now time.Time) bool {
	margin := min(30*time.Second, t.Expires.Sub(t.Obtained)/10)
	return t.ID != "" && now.Add(margin).Before(t.Expires)
}

// tokenCache stores one file per identity (auth URL, user, tenant), mode
// 0600 in a 0700 directory: $XDG_CACHE_HOME/lbaas/tokens on Linux.
type tokenCache struct{ dir string }

func newTokenCache() *tokenCache {
	dir, err := os.UserCacheDir()
	if err != nil {
		return &tokenCache{} // no cache: authenticate every time
	}
	return &tokenCache{dir: filepath.Join(dir, "lbaas", "tokens")}
}

func (c *tokenCache) path(key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(c.dir, hex.EncodeToString(sum[:12])+".json")
}

func (c *tokenCache) load(key string) *cachedToken {
	if c.dir == "" {
		return nil
	}
	b, err := os.ReadFile(c.path(key))
	if err != nil {
		return nil
	}
	var t cachedToken
	if json.Unmarshal(b, &t) != nil {
		return nil
	}
	return &t
}

// store writes the token atomically; a cache that cannot be written only
// costs a token request next time.
func (c *tokenCache) store(key string, t *cachedToken) {
	if c.dir == "" || os.MkdirAll(c.dir, 0o700) != nil {
		return
	}
	b, _ := json.Marshal(t)
	f, err := os.CreateTemp(c.dir, ".token-*")
	if err != nil {
		return
	}
	_, werr := f.Write(b)
	if cerr := f.Close(); werr != nil || cerr != nil || os.Chmod(f.Name(), 0o600) != nil ||
		os.Rename(f.Name(), c.path(key)) != nil {
		_ = os.Remove(f.Name())
	}
}

func (c *tokenCache) remove(key string) {
	if c.dir != "" {
		_ = os.Remove(c.path(key))
	}
}
