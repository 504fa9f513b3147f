package gateway

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"

	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
)

// atomFeeds are the paths served as Atom feeds (.atom or Accept:
// application/atom+xml): the node service events.
var atomFeeds = regexp.MustCompile(`^/v1\.0/([^/]+)/loadbalancers/([0-9]+)/nodes/events$`)

// atomFeed serves a feed by asking the REST handler for its JSON (so that
// authentication, limits and metrics are those of the JSON request) and
// writing it as the reference's Atom; a fault is passed on as XML.
func atomFeed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Set("Accept", mimeJSON)
		rec := &bufferedResponse{header: http.Header{}, Code: http.StatusOK}
		next.ServeHTTP(rec, r)
		r.Header.Set("Accept", mimeXML)
		if rec.Code != http.StatusOK {
			var f faultBody
			if rec.Code == http.StatusUnauthorized || json.Unmarshal(rec.Body.Bytes(), &f) != nil {
				w.WriteHeader(rec.Code)
				return
			}
			fault := &lbaasv1.Fault{Code: f.Code, Message: f.Message, Details: f.Details}
			if f.ValidationErrors != nil {
				fault.ValidationErrors = &lbaasv1.ValidationErrors{Messages: f.ValidationErrors.Messages}
			}
			writeFault(w, r, fault, 0)
			return
		}
		var events lbaasv1.ListNodeEventsResponse
		if err := protojson.Unmarshal(rec.Body.Bytes(), &events); err != nil {
			writeFault(w, r, &lbaasv1.Fault{Code: 500, Message: "An unknown exception has occurred. Please contact support."}, 0)
			return
		}
		m := atomFeeds.FindStringSubmatch(r.URL.Path)
		feed := nodeEventsFeed(requestBaseURL(r), m[1], m[2], &events)
		var buf bytes.Buffer
		buf.WriteString(xml.Header)
		if err := xml.NewEncoder(&buf).Encode(feed); err != nil {
			writeFault(w, r, &lbaasv1.Fault{Code: 500, Message: "An unknown exception has occurred. Please contact support."}, 0)
			return
		}
		w.Header().Set("Content-Type", mimeAtom)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(buf.Bytes())
	})
}

type atomFeedXML struct {
	XMLName xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	Links   []atomLink  `xml:"link"`
	Title   atomText    `xml:"title"`
	ID      string      `xml:"id"`
	Author  atomAuthor  `xml:"author"`
	Entries []atomEntry `xml:"entry"`
}

type atomLink struct {
	Rel  string `xml:"rel,attr,omitempty"`
	Href string `xml:"href,attr"`
}

type atomText struct {
	Type string `xml:"type,attr"`
	Text string `xml:",chardata"`
}

type atomAuthor struct {
	Name string `xml:"name"`
}

type atomCategory struct {
	Term string `xml:"term,attr"`
}

type atomEntry struct {
	Title    atomText     `xml:"title"`
	Summary  atomText     `xml:"summary"`
	Author   atomAuthor   `xml:"author"`
	Link     atomLink     `xml:"link"`
	ID       string       `xml:"id"`
	Category atomCategory `xml:"category"`
	Updated  string       `xml:"updated"`
	Content  *atomText    `xml:"content,omitempty"`
}

// nodeEventsFeed is the "Node Service Feed" of the reference's list node
// service events example.
func nodeEventsFeed(base, account, lb string, events *lbaasv1.ListNodeEventsResponse) *atomFeedXML {
	feed := &atomFeedXML{
		Title:  atomText{Type: "text", Text: "Node Service Feed"},
		ID:     fmt.Sprintf("%s-loadbalancers-%s-nodeservice", account, lb),
		Author: atomAuthor{Name: "Rackspace Cloud"},
	}
	for _, l := range events.GetLinks() {
		// The JSON list's link, as the same page of the feed.
		href := l.GetHref()
		path, query, _ := strings.Cut(href, "?")
		feed.Links = append(feed.Links, atomLink{Rel: l.GetRel(), Href: base + path + ".atom?" + query})
	}
	for _, e := range events.GetNodeServiceEvents() {
		content := "Details: " + e.GetDetailedMessage()
		if e.GetCallbackHost() != "" {
			content += "\nCallback Host: " + e.GetCallbackHost()
		}
		feed.Entries = append(feed.Entries, atomEntry{
			Title:    atomText{Type: "text", Text: e.GetTitle()},
			Summary:  atomText{Type: "text", Text: e.GetDescription()},
			Author:   atomAuthor{Name: e.GetAuthor()},
			Link:     atomLink{Href: base + "/v1.0" + e.GetRelativeUri()},
			ID:       fmt.Sprintf("%s-loadbalancers-%d-nodes-%d-events-%d", account, e.GetLoadbalancerId(), e.GetNodeId(), e.GetId()),
			Category: atomCategory{Term: e.GetCategory()},
			Updated:  e.GetCreated(),
			Content:  &atomText{Type: "text", Text: content},
		})
	}
	return feed
}

// bufferedResponse keeps a response in memory.
type bufferedResponse struct {
	header http.Header
	Code   int
	Body   bytes.Buffer
	wrote  bool
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(code int) {
	if !b.wrote {
		b.Code, b.wrote = code, true
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.wrote = true
	return b.Body.Write(p)
}
