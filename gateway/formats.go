package gateway

import (
	"mime"
	"net/http"
	"strings"

	"github.com/klauspost/compress/gzhttp"
	"github.com/munnerz/goautoneg"

	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
)

// The media types of the API (general-api-info/request-response.rst):
// JSON is the default, XML is the reference's XML, Atom serves the feeds.
const (
	mimeJSON = "application/json"
	mimeXML  = "application/xml"
	mimeAtom = "application/atom+xml"
)

// suffixTypes are the URL extensions that choose a response format; an
// extension wins over the Accept header.
var suffixTypes = map[string]string{".json": mimeJSON, ".xml": mimeXML, ".atom": mimeAtom}

// requestTypes are the media types a request body may have (text/xml is
// the older name of application/xml).
var requestTypes = map[string]string{mimeJSON: mimeJSON, mimeXML: mimeXML, "text/xml": mimeXML}

// negotiate settles the formats of a request before grpc-gateway sees it:
// a format suffix is stripped from the path, the response type is
// negotiated from the suffix or the Accept header (406 when none can be
// served) and written back as the one Accept value grpc-gateway looks up
// its marshaler with; a body's Content-Type must be JSON or XML (415),
// and is rewritten likewise. Atom is served by atom for the feeds
// (atomFeeds), and is 406 elsewhere.
func negotiate(next, atom http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Accept")
		out := ""
		for suffix, typ := range suffixTypes {
			if strings.HasSuffix(r.URL.Path, suffix) {
				r.URL.Path = strings.TrimSuffix(r.URL.Path, suffix)
				r.URL.RawPath = ""
				out = typ
				break
			}
		}
		if out == "" {
			out = mimeJSON
			if accept := r.Header.Get("Accept"); accept != "" {
				out = goautoneg.Negotiate(accept, []string{mimeJSON, mimeXML, mimeAtom})
			}
		}
		if out == "" || out == mimeAtom && !atomFeeds.MatchString(r.URL.Path) {
			r.Header.Set("Accept", mimeJSON)
			writeFault(w, r, &lbaasv1.Fault{Code: http.StatusNotAcceptable, Kind: "notAcceptable",
				Message: "Not Acceptable", Details: "This resource is available as application/json or application/xml"}, 0)
			return
		}
		r.Header.Set("Accept", out)
		if ct := r.Header.Get("Content-Type"); ct != "" && hasBody(r) {
			typ, _, err := mime.ParseMediaType(ct)
			in, ok := requestTypes[typ]
			if err != nil || !ok {
				writeFault(w, r, &lbaasv1.Fault{Code: http.StatusUnsupportedMediaType, Kind: "unsupportedMediaType",
					Message: "Unsupported Media Type", Details: "Request bodies are application/json or application/xml"}, 0)
				return
			}
			r.Header.Set("Content-Type", in)
		}
		if enc := r.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
			// gzip has been undone by compress; anything else is not understood.
			writeFault(w, r, &lbaasv1.Fault{Code: http.StatusUnsupportedMediaType, Kind: "unsupportedMediaType",
				Message: "Unsupported Media Type", Details: "Request bodies may be sent with Content-Encoding: gzip only"}, 0)
			return
		}
		if out == mimeAtom {
			atom.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
}

// compress answers gzip (or zstd) to clients that accept it, whatever the
// size of the answer, and accepts request bodies sent with
// Content-Encoding: gzip. The decompressed body goes through the same
// MaxBodyBytes bound as any other, so a small bomb cannot inflate past it.
func compress(next http.Handler) http.Handler {
	wrap, err := gzhttp.NewWrapper(gzhttp.MinSize(0), gzhttp.AllowCompressedRequests(true))
	if err != nil {
		panic(err) // the options are constants
	}
	return wrap(next)
}
