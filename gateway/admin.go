package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// AdminOptions configure the admin listener.
type AdminOptions struct {
	// Listen is the admin address. If empty, "127.0.0.1:9090".
	Listen string
	// Tokens are the bearer tokens accepted by the authenticated endpoints.
	// With none, those endpoints answer 401 to everyone.
	Tokens []AdminToken
	// Ready, if not nil, is asked by /readyz too: an error makes it answer
	// 503 with the error's text. The trail's failure goes here.
	Ready func() error
	// Trail, if not nil, serves GET /api/v1/records (the latest records)
	// and GET /api/v1/checkpoint (the latest signed checkpoint) to tokens
	// with the auditor role.
	Trail TrailReader
}

// AdminToken is one bearer token and the roles it carries.
type AdminToken struct {
	// Name identifies the token in logs; the token itself is never logged.
	Name string
	// Token is the secret the client sends as "Authorization: Bearer ...".
	Token string
	// Roles the token grants: RoleOperator, RoleAuditor, or RoleAdmin,
	// which implies every role.
	Roles []string
}

// Roles checked by the admin API.
const (
	RoleAdmin    = "admin"
	RoleOperator = "operator"
	RoleAuditor  = "auditor"
)

// Admin serves /healthz, /readyz and /metrics without a token, and every
// other endpoint only to a bearer token with the endpoint's role.
type Admin struct {
	listen string
	mux    *http.ServeMux
	srv    *http.Server
	log    *zap.Logger
	tokens atomic.Pointer[[]tokenEntry]
	g      *Gateway
	start  time.Time
	trail  TrailReader
}

type tokenEntry struct {
	name  string
	sum   [32]byte
	roles []string
}

// NewAdmin builds the admin server for g. gatherer supplies /metrics.
func NewAdmin(opts AdminOptions, g *Gateway, gatherer prometheus.Gatherer, log *zap.Logger) *Admin {
	if log == nil {
		log = zap.NewNop()
	}
	a := &Admin{listen: opts.Listen, mux: http.NewServeMux(), log: log, g: g, start: time.Now()}
	if a.listen == "" {
		a.listen = "127.0.0.1:9090"
	}
	a.SetTokens(opts.Tokens)
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	a.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if g != nil && !g.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("shutting down\n"))
			return
		}
		if opts.Ready != nil {
			if err := opts.Ready(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte(err.Error() + "\n"))
				return
			}
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	a.mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	a.Handle("GET /api/v1/routes", RoleOperator, http.HandlerFunc(a.routes))
	if opts.Trail != nil {
		a.trail = opts.Trail
		a.Handle("GET /api/v1/records", RoleAuditor, http.HandlerFunc(a.recentRecords))
		a.Handle("GET /api/v1/checkpoint", RoleAuditor, http.HandlerFunc(a.latestCheckpoint))
	}
	a.srv = &http.Server{
		Handler:           a.mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	return a
}

// SetTokens replaces the accepted tokens (on reload).
func (a *Admin) SetTokens(ts []AdminToken) {
	es := make([]tokenEntry, 0, len(ts))
	for _, t := range ts {
		es = append(es, tokenEntry{name: t.Name, sum: sha256.Sum256([]byte(t.Token)), roles: t.Roles})
	}
	a.tokens.Store(&es)
}

// Handle registers h under pattern for tokens holding role (or admin).
func (a *Admin) Handle(pattern, role string, h http.Handler) {
	a.mux.Handle(pattern, a.require(role, h))
}

func (a *Admin) require(role string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || tok == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="auditgate"`)
			writeAdminError(w, http.StatusUnauthorized, "a bearer token is required: send Authorization: Bearer <token> (tokens are set under admin.tokens)")
			return
		}
		e := a.lookup(tok)
		if e == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="auditgate", error="invalid_token"`)
			writeAdminError(w, http.StatusUnauthorized, "unknown bearer token")
			return
		}
		if !slices.Contains(e.roles, role) && !slices.Contains(e.roles, RoleAdmin) {
			writeAdminError(w, http.StatusForbidden, fmt.Sprintf("token %q lacks the %q role", e.name, role))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// lookup compares the token's hash with every known hash in constant time,
// so the answer's timing says nothing about how close a guess came.
func (a *Admin) lookup(tok string) *tokenEntry {
	sum := sha256.Sum256([]byte(tok))
	var found *tokenEntry
	es := *a.tokens.Load()
	for i := range es {
		if subtle.ConstantTimeCompare(sum[:], es[i].sum[:]) == 1 {
			found = &es[i]
		}
	}
	return found
}

func (a *Admin) routes(w http.ResponseWriter, _ *http.Request) {
	type routeView struct {
		Name       string `json:"name"`
		Host       string `json:"host,omitempty"`
		PathPrefix string `json:"path_prefix,omitempty"`
		Upstream   string `json:"upstream"`
		Protocol   string `json:"protocol,omitempty"`
		Policy     string `json:"policy,omitempty"`
	}
	var out struct {
		Uptime string      `json:"uptime"`
		Routes []routeView `json:"routes"`
	}
	out.Uptime = time.Since(a.start).Round(time.Second).String()
	if a.g != nil {
		for _, r := range a.g.cur.Load().routes {
			out.Routes = append(out.Routes, routeView{r.Name, r.Host, r.PathPrefix, r.Upstream, string(r.Protocol), r.Policy})
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func writeAdminError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"message": msg}})
	_, _ = w.Write(append(b, '\n'))
}

// ListenAndServe listens on the admin address and serves until Shutdown.
func (a *Admin) ListenAndServe() error {
	ln, err := net.Listen("tcp", a.listen)
	if err != nil {
		return fmt.Errorf("listen on admin address %s: %w", a.listen, err)
	}
	return a.Serve(ln)
}

// Serve serves on ln until Shutdown; it returns nil after Shutdown.
func (a *Admin) Serve(ln net.Listener) error {
	if err := a.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops the admin server, waiting for open requests until ctx is
// done.
func (a *Admin) Shutdown(ctx context.Context) error {
	return a.srv.Shutdown(ctx)
}
