// Command referrers-registry is the test registry with the OCI 1.1 referrers API
// (GET /v2/<name>/referrers/<digest>): go-containerregistry's pkg/registry, in
// memory, on 127.0.0.1, with referrers support switched on. ci/setup builds it
// into the test cache; tests/it/support/registry.rs starts it.
//
// It prints "listening on ADDR" on stdout once it accepts connections. With
// -user and -password it requires HTTP basic auth on every request, as
// Debian's docker-registry does with htpasswd. With -referrers=false it serves
// no referrers API (the path registries without it take).
package main

import (
	"crypto/subtle"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	user := flag.String("user", "", "basic auth user (none: anonymous access)")
	password := flag.String("password", "", "basic auth password")
	referrers := flag.Bool("referrers", true, "serve the referrers API")
	flag.Parse()

	handler := registry.New(
		registry.WithReferrersSupport(*referrers),
		registry.Logger(log.New(os.Stderr, "", log.LstdFlags)),
	)
	handler = blobLocation(handler)
	if *user != "" {
		handler = basicAuth(handler, *user, *password)
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	fmt.Printf("listening on %s\n", l.Addr())
	os.Stdout.Sync()
	log.Fatal(http.Serve(l, handler))
}

// blobLocation adds the Location header that the distribution spec requires on a
// 201 answer to a monolithic blob upload (POST .../blobs/uploads/?digest=…);
// pkg/registry leaves it out, and clients that follow the spec (oci-client) refuse
// the answer without it.
func blobLocation(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		digest := r.URL.Query().Get("digest")
		i := strings.Index(r.URL.Path, "/blobs/uploads")
		if digest == "" || i < 0 {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&locating{ResponseWriter: w, location: r.URL.Path[:i] + "/blobs/" + digest}, r)
	})
}

type locating struct {
	http.ResponseWriter
	location string
}

func (l *locating) WriteHeader(status int) {
	if status == http.StatusCreated && l.Header().Get("Location") == "" {
		l.Header().Set("Location", l.location)
	}
	l.ResponseWriter.WriteHeader(status)
}

func basicAuth(next http.Handler, user, password string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(user)) != 1 ||
			subtle.ConstantTimeCompare([]byte(p), []byte(password)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="reprove-test"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
			return
		}
		next.ServeHTTP(w, r)
	})
}
