package e2e

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// customerCA is a test CA that signs the certificates a customer uploads.
type customerCA struct {
	cert *x509.Certificate
	key  *rsa.PrivateKey
	pool *x509.CertPool
}

func newCustomerCA(t *testing.T) *customerCA {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e customer CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return &customerCA{cert: c, key: k, pool: pool}
}

// issue signs a certificate for host: its PEM and its key's (PKCS #1).
func (ca *customerCA) issue(t *testing.T, host string) (cert, key string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: host},
		DNSNames: []string{host}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &k.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
}

// protoBackend answers every request with its name and the
// X-Forwarded-Proto it was sent.
func protoBackend(t *testing.T, name string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s proto=%s", name, r.Header.Get("X-Forwarded-Proto"))
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// tlsGet sends GET https://sni:port/ to addr, trusting roots, and returns
// the body, the certificate's common name and the HTTP version.
func tlsGet(addr, sni string, roots *x509.CertPool) (body, cn, proto string, err error) {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots, ServerName: sni},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, network, addr)
		},
	}
	defer tr.CloseIdleConnections()
	_, port, _ := net.SplitHostPort(addr)
	res, err := (&http.Client{Transport: tr, Timeout: 3 * time.Second}).Get("https://" + net.JoinHostPort(sni, port) + "/")
	if err != nil {
		return "", "", "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b), res.TLS.PeerCertificates[0].Subject.CommonName, res.Proto, nil
}

// A real Envoy of the fleet, on a control plane with mutual TLS on xDS,
// terminates TLS for a load balancer with certificates it gets over SDS:
// the default certificate, the mapped one by SNI, h2 by ALPN,
// X-Forwarded-Proto https on the secure port and http on the plain one,
// and (where port 443 can be bound) the redirect of the plain port.
func TestEnvoyTerminatesTLS(t *testing.T) {
	t.Parallel()
	envoyBin := envoyBinary(t)
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	pki := filepath.Join(dir, "pki")
	ca := filepath.Join(pki, "ca")
	server, client := tlsFiles(filepath.Join(pki, "server")), tlsFiles(filepath.Join(pki, "client"))
	run(t, bin, "cert", "ca", "--out", ca)
	run(t, bin, "cert", "server", "--ca", ca, "--out", string(server))
	run(t, bin, "cert", "issue", "--ca", ca, "--fleet", "default", "--node", "e2e-envoy", "--out", string(client))
	d := startDaemon(t, bin, dir, []string{
		"LBAASD_TLS_CERT=" + filepath.Join(string(server), "tls.crt"),
		"LBAASD_TLS_KEY=" + filepath.Join(string(server), "tls.key"),
		"LBAASD_XDS_CLIENT_CA=" + filepath.Join(ca, "ca.crt"),
	})
	m := servingLine.FindStringSubmatch(d.stderr.String())
	a := signIn(t, bin, dir, "https://"+m[1], &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: server.roots(t)}}})
	startEnvoy(t, envoyBin, bin, d, "--tls-dir", string(client))

	port, securePort := freePort(t), freePort(t)
	lb := a.create(fmt.Sprintf(`{"loadBalancer":{"name":"tls","protocol":"HTTP","port":%d,"algorithm":"ROUND_ROBIN",
		"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],"nodes":[%s]}}`, port, nodeJSON("127.0.0.1", protoBackend(t, "a"), "")))
	a.waitStatus(lb.ID, "ACTIVE")
	vip := vipOf(t, a, lb.ID)
	customer := newCustomerCA(t)
	cert, key := customer.issue(t, "www.example.com")
	body, _ := json.Marshal(map[string]any{"sslTermination": map[string]any{"certificate": cert, "privatekey": key,
		"enabled": true, "securePort": securePort, "secureTrafficOnly": false}})
	a.do("PUT", a.lbPath(lb.ID, "/ssltermination"), string(body), 200, nil)
	a.waitStatus(lb.ID, "ACTIVE") // Envoy acknowledged the listener and its secret
	secure := net.JoinHostPort(vip, strconv.Itoa(securePort))

	waitFor(t, "the default certificate, h2 and X-Forwarded-Proto https on the secure port", func() bool {
		b, cn, proto, err := tlsGet(secure, "www.example.com", customer.pool)
		return err == nil && b == "a proto=https" && cn == "www.example.com" && proto == "HTTP/2.0"
	})
	waitHTTP(t, fmt.Sprintf("http://%s:%d/", vip, port), "X-Forwarded-Proto http on the plain port",
		func(h map[string]int) bool { return h["a proto=http"] == 20 })

	t.Run("a certificate mapping is chosen by SNI", func(t *testing.T) {
		mcert, mkey := customer.issue(t, "api.example.com")
		body, _ := json.Marshal(map[string]any{"certificateMapping": map[string]any{"hostName": "api.example.com",
			"certificate": mcert, "privateKey": mkey}})
		a.do("POST", a.lbPath(lb.ID, "/ssltermination/certificatemappings"), string(body), 202, nil)
		a.waitStatus(lb.ID, "ACTIVE")
		waitFor(t, "the mapped certificate for api.example.com", func() bool {
			b, cn, _, err := tlsGet(secure, "api.example.com", customer.pool)
			return err == nil && b == "a proto=https" && cn == "api.example.com"
		})
		// Any other name gets the default certificate.
		_, cn, _, err := tlsGet(secure, "www.example.com", customer.pool)
		if err != nil || cn != "www.example.com" {
			t.Errorf("www.example.com: %q, %v", cn, err)
		}
	})

	t.Run("httpsRedirect: the plain port redirects to https on 443", func(t *testing.T) {
		// The reference: securePort 443 and secureTrafficOnly true.
		ln, err := net.Listen("tcp", net.JoinHostPort(vip, "443"))
		if err != nil {
			skipUnlessRequired(t, "ENVOY_REQUIRED", "the redirect of %s: port 443 cannot be bound here (%v)", t.Name(), err)
		}
		ln.Close()
		a.do("PUT", a.lbPath(lb.ID, "/ssltermination"), `{"sslTermination":{"securePort":443,"secureTrafficOnly":true}}`, 200, nil)
		a.waitStatus(lb.ID, "ACTIVE")
		a.do("PUT", a.lbPath(lb.ID, ""), `{"loadBalancer":{"httpsRedirect":true}}`, 202, nil)
		a.waitStatus(lb.ID, "ACTIVE")
		noFollow := &http.Client{Timeout: 2 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		waitFor(t, "a 301 to https on 443", func() bool {
			res, err := noFollow.Get(fmt.Sprintf("http://%s:%d/page.html?q=1", vip, port))
			if err != nil {
				return false
			}
			res.Body.Close()
			loc, err := url.Parse(res.Header.Get("Location"))
			return err == nil && res.StatusCode == http.StatusMovedPermanently && loc.Scheme == "https" &&
				(loc.Port() == "" || loc.Port() == "443") && loc.Path == "/page.html" && loc.RawQuery == "q=1"
		})
		waitFor(t, "the secure port on 443 serves", func() bool {
			b, _, _, err := tlsGet(net.JoinHostPort(vip, "443"), "www.example.com", customer.pool)
			return err == nil && strings.HasSuffix(b, "proto=https")
		})
	})
}
