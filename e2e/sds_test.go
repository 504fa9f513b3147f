package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	secretservice "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	grpcstatus "google.golang.org/grpc/status"
)

// keyPair is a self-signed RSA certificate for a host and its key, in PEM
// (what a customer PUTs on /ssltermination: PKCS #1), and the key's
// PKCS #8 encoding (what the control plane seals and proxies get, in PEM).
type keyPair struct {
	cert, key string
	pkcs8     []byte
}

func newKeyPair(t *testing.T, host string) keyPair {
	t.Helper()
	cert, key := selfSigned(t, host)
	b, _ := pem.Decode([]byte(key))
	k, err := x509.ParsePKCS1PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{cert: cert, key: key, pkcs8: der}
}

// delivered is the key as a proxy gets it.
func (kp keyPair) delivered() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kp.pkcs8}))
}

func (kp keyPair) termination(extra string) string {
	b, _ := json.Marshal(map[string]string{"certificate": kp.cert, "privatekey": kp.key})
	return fmt.Sprintf(`{"sslTermination":%s}`, strings.Replace(string(b), "{", `{"enabled":true,"securePort":443,`+extra, 1))
}

// sdsEnvoy is an Envoy-shaped ADS client (state of the world): wildcard
// clusters and listeners, by name the filter configurations (ECDS) the
// listeners name and the secrets the test asks for. A reader acknowledges
// every cluster and filter configuration response at once and hands
// listener and secret responses to the test.
type sdsEnvoy struct {
	t    *testing.T
	st   discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	mu   sync.Mutex // one Send at a time
	subs map[string][]string
	last map[string]*discoveryv3.DiscoveryResponse
	got  chan *discoveryv3.DiscoveryResponse
	errc chan error
}

func newSDSEnvoy(t *testing.T, st discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient) *sdsEnvoy {
	e := &sdsEnvoy{t: t, st: st, subs: map[string][]string{}, last: map[string]*discoveryv3.DiscoveryResponse{},
		got: make(chan *discoveryv3.DiscoveryResponse, 64), errc: make(chan error, 1)}
	go e.read()
	return e
}

func (e *sdsEnvoy) read() {
	for {
		r, err := e.st.Recv()
		if err != nil {
			e.errc <- err
			return
		}
		switch r.GetTypeUrl() {
		case resource.ListenerType:
			e.follow(r)
			e.got <- r
		case resource.SecretType:
			e.got <- r
		default:
			e.send(r.GetTypeUrl(), nil, r, "")
		}
	}
}

// follow subscribes to the filter configurations a listener response names.
func (e *sdsEnvoy) follow(r *discoveryv3.DiscoveryResponse) {
	var names []string
	for _, a := range r.GetResources() {
		l := &listenerv3.Listener{}
		if err := a.UnmarshalTo(l); err != nil {
			e.t.Error(err)
			return
		}
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				if f.GetConfigDiscovery() != nil && !slices.Contains(names, f.GetName()) {
					names = append(names, f.GetName())
				}
			}
		}
	}
	slices.Sort(names)
	e.mu.Lock()
	same := slices.Equal(names, e.subs[resource.ExtensionConfigType])
	e.mu.Unlock()
	if !same {
		e.send(resource.ExtensionConfigType, append([]string{}, names...), nil, "")
	}
}

// send requests a type: names (nil: the current subscription), the
// version and nonce of r (nil: of the last response of the type), and a
// refusal when nack is set.
func (e *sdsEnvoy) send(typeURL string, names []string, r *discoveryv3.DiscoveryResponse, nack string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if names != nil {
		e.subs[typeURL] = names
	}
	if r != nil {
		e.last[typeURL] = r
	} else {
		r = e.last[typeURL]
	}
	req := &discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "sds-envoy", Cluster: "default", UserAgentName: "envoy"},
		TypeUrl: typeURL, ResourceNames: e.subs[typeURL]}
	if r != nil {
		req.VersionInfo, req.ResponseNonce = r.GetVersionInfo(), r.GetNonce()
	}
	if nack != "" {
		req.ErrorDetail = &status.Status{Code: int32(codes.InvalidArgument), Message: nack}
	}
	if err := e.st.Send(req); err != nil {
		e.t.Error(err)
	}
}

// next is the next listener or secret response of a type (acknowledging
// one of the other type).
func (e *sdsEnvoy) next(typeURL string) *discoveryv3.DiscoveryResponse {
	e.t.Helper()
	for {
		select {
		case r := <-e.got:
			if r.GetTypeUrl() == typeURL {
				return r
			}
			e.send(r.GetTypeUrl(), nil, r, "")
		case err := <-e.errc:
			e.t.Fatalf("waiting for %s: %v", typeURL, err)
		case <-time.After(15 * time.Second):
			e.t.Fatalf("no %s response", typeURL)
		}
	}
}

func secretsIn(t *testing.T, r *discoveryv3.DiscoveryResponse) map[string]*tlsv3.Secret {
	t.Helper()
	out := map[string]*tlsv3.Secret{}
	for _, a := range r.GetResources() {
		s := &tlsv3.Secret{}
		if err := a.UnmarshalTo(s); err != nil {
			t.Fatal(err)
		}
		out[s.GetName()] = s
	}
	return out
}

// SSL termination and its certificate mappings reach the proxies of the
// load balancer's fleet over SDS on the mutual-TLS xDS port, and nobody
// else: a client of another
// fleet gets nothing, a certificate claiming another fleet and a client
// without one are refused. The status is ACTIVE only once the fleet
// acknowledged the secret; a refused secret puts the load balancer in
// ERROR with the proxy's message; deleting the termination withdraws the
// secret; the daemon's log never holds the key.
func TestSDSOverMutualTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	mtls := newMutualTLS(t, bin, dir)
	server, fleet, other := mtls.server, mtls.fleet, tlsFiles(filepath.Join(dir, "pki", "other"))
	run(t, bin, "cert", "issue", "--ca", mtls.ca, "--fleet", "edge", "--out", string(other))
	d := startDaemon(t, bin, dir, mtls.env())
	m := servingLine.FindStringSubmatch(d.stderr.String())
	roots := server.roots(t)
	a := signIn(t, bin, dir, "https://"+m[1], &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}})
	be := startBackend(t, "a")
	lb := a.create(fmt.Sprintf(`{"loadBalancer":{"name":"sds","protocol":"HTTP","port":80,"algorithm":"ROUND_ROBIN",
		"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],"nodes":[%s]}}`, nodeJSON("127.0.0.1", be.port, "")))
	a.waitStatus(lb.ID, "ACTIVE")
	secretName := fmt.Sprintf("lb_%d_tls", lb.ID)

	dial := func(cert *tls.Certificate) *grpc.ClientConn {
		cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		conn, err := grpc.NewClient(d.xdsAddr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	// sds asks the per-type secret service for the named secrets as a node
	// of claimed, and returns the secrets of the first answer (none when
	// there is none within a second) or the stream's error.
	sds := func(cert *tls.Certificate, claimed string, names ...string) (map[string]*tlsv3.Secret, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := secretservice.NewSecretDiscoveryServiceClient(dial(cert)).StreamSecrets(ctx)
		if err != nil {
			return nil, err
		}
		if err := st.Send(&discoveryv3.DiscoveryRequest{Node: &corev3.Node{Id: "probe", Cluster: claimed, UserAgentName: "envoy"},
			TypeUrl: resource.SecretType, ResourceNames: names}); err != nil {
			return nil, err
		}
		got := make(chan struct{})
		var r *discoveryv3.DiscoveryResponse
		go func() { r, err = st.Recv(); close(got) }()
		select {
		case <-got:
		case <-time.After(time.Second):
			cancel()
			<-got
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return secretsIn(t, r), nil
	}

	fleetCert := fleet.cert(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(dial(&fleetCert)).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	envoy := newSDSEnvoy(t, st)
	envoy.send(resource.ClusterType, nil, nil, "")
	envoy.send(resource.ListenerType, nil, nil, "")
	envoy.send(resource.ListenerType, nil, envoy.next(resource.ListenerType), "")

	first := newKeyPair(t, "www.example.com")
	a.do("PUT", a.lbPath(lb.ID, "/ssltermination"), first.termination(""), 200, nil)
	secureName := fmt.Sprintf("lb_%d_secure", lb.ID)
	for {
		r := envoy.next(resource.ListenerType)
		envoy.send(resource.ListenerType, nil, r, "")
		if hasResource(t, r, secureName) {
			break
		}
	}
	// The secure listener names its secret: the Envoy asks for it.
	envoy.send(resource.SecretType, []string{secretName}, nil, "")
	r := envoy.next(resource.SecretType)
	got := secretsIn(t, r)[secretName].GetTlsCertificate()
	if got.GetPrivateKey().GetInlineString() != first.delivered() || got.GetCertificateChain().GetInlineString() != first.cert {
		t.Fatalf("the fleet's Envoy got %v", secretsIn(t, r))
	}
	if s := a.get(lb.ID); s.Status != "PENDING_UPDATE" {
		t.Errorf("before the secret is acknowledged: %s, want PENDING_UPDATE", s.Status)
	}
	envoy.send(resource.SecretType, []string{secretName}, r, "")
	a.waitStatus(lb.ID, "ACTIVE")

	// A certificate mapping: a chain for its host name on the secure
	// listener, and a secret of its own the Envoy then asks for.
	mapped := newKeyPair(t, "api.example.com")
	var created struct {
		CertificateMapping struct{ ID int } `json:"certificateMapping"`
	}
	body, _ := json.Marshal(map[string]any{"certificateMapping": map[string]any{"hostName": "api.example.com",
		"certificate": mapped.cert, "privateKey": mapped.key}})
	a.do("POST", a.lbPath(lb.ID, "/ssltermination/certificatemappings"), string(body), 202, &created)
	mappingName := fmt.Sprintf("lb_%d_tls_%d", lb.ID, created.CertificateMapping.ID)
	lr := envoy.next(resource.ListenerType)
	envoy.send(resource.ListenerType, nil, lr, "")
	envoy.send(resource.SecretType, []string{secretName, mappingName}, r, "")
	r = envoy.next(resource.SecretType)
	if got := secretsIn(t, r)[mappingName].GetTlsCertificate(); got.GetPrivateKey().GetInlineString() != mapped.delivered() {
		t.Fatalf("the fleet's Envoy got %v, want %s", secretsIn(t, r), mappingName)
	}
	envoy.send(resource.SecretType, []string{secretName, mappingName}, r, "")
	a.waitStatus(lb.ID, "ACTIVE")

	t.Run("another fleet's client gets nothing", func(t *testing.T) {
		c := other.cert(t)
		if got, err := sds(&c, "edge", secretName, mappingName); err != nil || len(got) > 0 {
			t.Errorf("fleet edge: %v, %v; want no secret", got, err)
		}
		if got, err := sds(&c, "default", secretName); grpcstatus.Code(err) != codes.PermissionDenied {
			t.Errorf("fleet edge's certificate claiming fleet default: %v, %v; want PermissionDenied", got, err)
		}
	})
	t.Run("a client without a certificate gets nothing", func(t *testing.T) {
		if got, err := sds(nil, "default", secretName); grpcstatus.Code(err) != codes.Unavailable {
			t.Errorf("no certificate: %v, %v; want Unavailable", got, err)
		}
	})
	t.Run("the fleet's certificate on the secret service", func(t *testing.T) {
		if got, err := sds(&fleetCert, "default", secretName, mappingName); err != nil || got[secretName] == nil || got[mappingName] == nil {
			t.Errorf("fleet default: %v, %v; want %s and %s", got, err, secretName, mappingName)
		}
	})

	// A refused secret (Envoy names no resource when a key does not load)
	// puts the load balancer in ERROR with the message.
	second := newKeyPair(t, "www.example.com")
	a.do("PUT", a.lbPath(lb.ID, "/ssltermination"), second.termination(""), 200, nil)
	r = envoy.next(resource.SecretType)
	const refusal = "Failed to load private key from <inline>"
	envoy.send(resource.SecretType, []string{secretName, mappingName}, r, refusal)
	if s := a.waitStatus(lb.ID, "ERROR"); !strings.Contains(s.StatusDescription, refusal) {
		t.Errorf("status description %q, want the refusal", s.StatusDescription)
	}

	// Deleting the termination withdraws the secure listener and the
	// secret: the fleet's client gets no secret any more.
	a.do("DELETE", a.lbPath(lb.ID, "/ssltermination"), "", 200, nil)
	for {
		r := envoy.next(resource.ListenerType)
		envoy.send(resource.ListenerType, nil, r, "")
		if !hasResource(t, r, secureName) {
			break
		}
	}
	a.waitStatus(lb.ID, "ACTIVE")
	if got, err := sds(&fleetCert, "default", secretName, mappingName); err != nil || len(got) > 0 {
		t.Errorf("after deletion: %v, %v; want no secret", got, err)
	}

	// No line of the daemon's log holds either key, as the customer's
	// PEM, the delivered PEM, base64 or hex of its DER.
	log := d.stderr.String()
	for _, kp := range []keyPair{first, second, mapped} {
		pkcs1, _ := pem.Decode([]byte(kp.key))
		for _, s := range []string{strings.Split(kp.key, "\n")[1], strings.Split(kp.delivered(), "\n")[1],
			base64.StdEncoding.EncodeToString(pkcs1.Bytes)[:64], base64.StdEncoding.EncodeToString(kp.pkcs8)[:64],
			fmt.Sprintf("%x", pkcs1.Bytes[:48]), fmt.Sprintf("%x", kp.pkcs8[:48])} {
			if strings.Contains(log, s) {
				t.Fatalf("the daemon's log holds a private key (%q...)", s[:16])
			}
		}
	}
	d.stop(t)
}

// hasResource tells whether a listener response carries the listener.
func hasResource(t *testing.T, r *discoveryv3.DiscoveryResponse, name string) bool {
	t.Helper()
	for _, a := range r.GetResources() {
		l := &listenerv3.Listener{}
		if err := a.UnmarshalTo(l); err != nil {
			t.Fatal(err)
		}
		if l.GetName() == name {
			return true
		}
	}
	return false
}
