package gateway_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openlbaas/lbaas/api"
	"github.com/openlbaas/lbaas/auth"
	"github.com/openlbaas/lbaas/gateway"
	"github.com/openlbaas/lbaas/internal/server"
	"github.com/openlbaas/lbaas/store"
)

// FuzzDecodeCreateLoadBalancer sends arbitrary bodies to the create
// operation through the real gateway, services and store. Whatever the
// body, the answer is 202 or a well-formed Rackspace fault other than a
// 500 loadBalancerFault, and nothing panics.
func FuzzDecodeCreateLoadBalancer(f *testing.F) {
	for _, seed := range []string{
		simpleLB,
		`{"loadBalancer":{"name":"a-new-loadbalancer","port":80,"protocol":"HTTP","virtualIps":[{"type":"PUBLIC"}],"nodes":[{"address":"10.1.1.1","port":80,"condition":"ENABLED"}]}}`,
		`{"loadBalancer":{"name":"a-new-loadbalancer","port":80,"protocol":"HTTP","virtualIps":[{"id":1}],"nodes":[{"address":"10.1.1.1","port":"80","condition":"ENABLED"}]}}`,
		`{"loadBalancer":{"name":"x","protocol":"TCP","port":53,"halfClosed":true,"algorithm":"ROUND_ROBIN","virtualIps":[{"type":"SERVICENET"}],"accessList":[{"address":"0.0.0.0/0","type":"DENY"},{"address":"::1","type":"ALLOW"}]}}`,
		`{"loadBalancer":{"name":"x","protocol":"HTTP","virtualIps":[{"type":"PUBLIC","ipVersion":"IPV6"}],"healthMonitor":{"type":"HTTP","delay":10,"timeout":10,"attemptsBeforeDeactivation":3,"path":"/","statusRegex":"^[234][0-9][0-9]$","bodyRegex":"^[234][0-9][0-9]$","hostHeader":"myrack.com"},"sessionPersistence":{"persistenceType":"HTTP_COOKIE"},"connectionThrottle":{"maxConnections":10,"minConnections":100,"maxConnectionRate":50,"rateInterval":60},"metadata":[{"key":"color","value":"blue"}],"connectionLogging":{"enabled":true},"contentCaching":{"enabled":true}}}`,
		`{"loadBalancer":{"name":"\u0000","protocol":"HTTP","port":4294967296,"virtualIps":[{}]}}`,
		`{"loadBalancer":null}`,
		`[]`,
		`{"loadBalancer":{"nodes":[{"address":"fe80::1%eth0","port":1,"condition":"ENABLED"}]}}`,
	} {
		f.Add(seed)
	}
	h, token := fuzzHandler(f)
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest("POST", "/v1.0/1234/loadbalancers", strings.NewReader(body))
		req.Header.Set("X-Auth-Token", token)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code == http.StatusAccepted {
			return
		}
		var fault struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &fault); err != nil || fault.Code != rec.Code || fault.Message == "" {
			t.Fatalf("status %d with body %q is not a Rackspace fault", rec.Code, rec.Body.String())
		}
		if rec.Code == http.StatusInternalServerError && !strings.Contains(fault.Message, "virtual IPs") {
			t.Fatalf("body %q caused a 500: %s", body, rec.Body.String())
		}
	})
}

func fuzzHandler(f *testing.F) (http.Handler, string) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pools, _ := store.ParsePools("PUBLIC=127.1.0.0/16,SERVICENET=127.2.0.0/16,PUBLIC=fd00:1ba5::/64")
	st, err := store.Open(context.Background(), store.Options{URL: filepath.Join(f.TempDir(), "fuzz.db"), Pools: pools, Logger: log})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	authn := auth.New(st, time.Hour, log)
	key, err := authn.CreateUser(context.Background(), "fuzz", "1234", "")
	if err != nil {
		f.Fatal(err)
	}
	tok, err := authn.IssueToken(context.Background(), auth.Credentials{Username: "fuzz", APIKey: key})
	if err != nil {
		f.Fatal(err)
	}
	limits := api.DefaultLimits
	limits.LoadBalancers = 1 << 30
	cfg := api.Config{Limits: limits, Fleet: "default", Logger: log}
	h, err := gateway.New(server.Services(st, authn, cfg), log, nil)
	if err != nil {
		f.Fatal(err)
	}
	return h, tok.ID
}

// FuzzDecodeXMLCreateLoadBalancer is FuzzDecodeCreateLoadBalancer for XML
// bodies and answers: 202, or the reference's XML fault, never a 500.
func FuzzDecodeXMLCreateLoadBalancer(f *testing.F) {
	for _, seed := range []string{
		`<loadBalancer xmlns="http://docs.openstack.org/loadbalancers/api/v1.0" name="a" port="80" protocol="HTTP"><virtualIps><virtualIp type="PUBLIC"/></virtualIps><nodes><node address="10.1.1.1" port="80" condition="ENABLED"/></nodes></loadBalancer>`,
		`<loadBalancer name="x" protocol="HTTP" halfClosed="true"><virtualIps><virtualIp id="1"/></virtualIps><metadata><meta key="k">v</meta></metadata><healthMonitor type="CONNECT" delay="10" timeout="10" attemptsBeforeDeactivation="3"/></loadBalancer>`,
		`<loadBalancer><accessList><networkItem address="::1" type="ALLOW"/></accessList><nodes>text</nodes></loadBalancer>`,
		`<nodes><node/></nodes>`,
		`<loadBalancer port="99999999999999999999"/>`,
	} {
		f.Add(seed)
	}
	h, token := fuzzHandler(f)
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest("POST", "/v1.0/1234/loadbalancers", strings.NewReader(body))
		req.Header.Set("X-Auth-Token", token)
		req.Header.Set("Content-Type", "application/xml")
		req.Header.Set("Accept", "application/xml")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var answer struct {
			XMLName xml.Name
			Code    int    `xml:"code,attr"`
			Message string `xml:"message"`
		}
		if err := xml.Unmarshal(rec.Body.Bytes(), &answer); err != nil || rec.Header().Get("Content-Type") != "application/xml" {
			t.Fatalf("status %d with body %q is not XML", rec.Code, rec.Body.String())
		}
		if rec.Code == http.StatusAccepted {
			return
		}
		if answer.Code != rec.Code || answer.Message == "" || answer.XMLName.Local == "" {
			t.Fatalf("status %d with body %q is not a Rackspace fault", rec.Code, rec.Body.String())
		}
		if rec.Code == http.StatusInternalServerError && !strings.Contains(answer.Message, "virtual IPs") {
			t.Fatalf("body %q caused a 500: %s", body, rec.Body.String())
		}
	})
}
