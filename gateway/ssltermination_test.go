package gateway_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the pgx driver of database/sql
	_ "github.com/mattn/go-sqlite3"    // the sqlite3 driver of database/sql

	"github.com/openlbaas/lbaas/internal/logutil"
	"github.com/openlbaas/lbaas/internal/pgtest"
	"github.com/openlbaas/lbaas/internal/server"
)

// testPKI is a CA, an intermediate it signs and leaf certificates, made
// by crypto/x509 once per test binary (RSA keys take a while).
type testPKI struct {
	caPEM, interPEM string
	// leaf is valid now, signed by the intermediate, with leafKey.
	leafPEM, leafKeyPEM string
	// expired and future are leaves signed by the intermediate, with
	// leafKey; sha1 one it signed with SHA-1.
	expiredPEM, futurePEM, sha1PEM string
	// otherKeyPEM is a 2048-bit key that matches none of them; weakPEM a
	// 1024-bit leaf and weakKeyPEM its key; ecKeyPEM an ECDSA key.
	otherKeyPEM, weakPEM, weakKeyPEM, ecKeyPEM string
	// otherPEM is a leaf (api.example.com) with otherKey, signed by the
	// intermediate (for certificate mappings).
	otherPEM string
	// leafPKCS8 and otherPKCS8 are the keys' PKCS #8 DER, to look for in
	// stored bytes.
	leafPKCS8, otherPKCS8 []byte
}

var (
	pkiOnce sync.Once
	pkiData *testPKI
)

func rsaKey(t *testing.T, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pemOf(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func signCert(t *testing.T, tmpl, parent *x509.Certificate, pub any, parentKey any) (*x509.Certificate, string) {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, pemOf("CERTIFICATE", der)
}

func sslPKI(t *testing.T) *testPKI {
	t.Helper()
	pkiOnce.Do(func() {
		now := time.Now()
		serial := int64(0)
		tmpl := func(cn string, ca bool, from, to time.Time) *x509.Certificate {
			serial++
			c := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
				NotBefore: from, NotAfter: to, BasicConstraintsValid: true, IsCA: ca}
			if ca {
				c.KeyUsage = x509.KeyUsageCertSign
			} else {
				c.KeyUsage, c.DNSNames = x509.KeyUsageDigitalSignature, []string{cn}
			}
			return c
		}
		p := &testPKI{}
		caKey, interKey, leafKey, other, weak := rsaKey(t, 2048), rsaKey(t, 2048), rsaKey(t, 2048), rsaKey(t, 2048), rsaKey(t, 1024)
		caTmpl := tmpl("Test Root CA", true, now.Add(-time.Hour), now.Add(24*time.Hour))
		ca, caPEM := signCert(t, caTmpl, caTmpl, &caKey.PublicKey, caKey)
		inter, interPEM := signCert(t, tmpl("Test Intermediate", true, now.Add(-time.Hour), now.Add(24*time.Hour)), ca, &interKey.PublicKey, caKey)
		_, p.leafPEM = signCert(t, tmpl("www.example.com", false, now.Add(-time.Hour), now.Add(12*time.Hour)), inter, &leafKey.PublicKey, interKey)
		_, p.expiredPEM = signCert(t, tmpl("old.example.com", false, now.Add(-48*time.Hour), now.Add(-24*time.Hour)), inter, &leafKey.PublicKey, interKey)
		_, p.futurePEM = signCert(t, tmpl("new.example.com", false, now.Add(24*time.Hour), now.Add(48*time.Hour)), inter, &leafKey.PublicKey, interKey)
		sha1 := tmpl("sha1.example.com", false, now.Add(-time.Hour), now.Add(12*time.Hour))
		sha1.SignatureAlgorithm = x509.SHA1WithRSA
		_, p.sha1PEM = signCert(t, sha1, inter, &leafKey.PublicKey, interKey)
		_, p.otherPEM = signCert(t, tmpl("api.example.com", false, now.Add(-time.Hour), now.Add(12*time.Hour)), inter, &other.PublicKey, interKey)
		_, p.weakPEM = signCert(t, tmpl("weak.example.com", false, now.Add(-time.Hour), now.Add(12*time.Hour)), inter, &weak.PublicKey, interKey)
		p.caPEM, p.interPEM = caPEM, interPEM
		p.leafKeyPEM = pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(leafKey))
		p.otherKeyPEM = pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(other))
		p.weakKeyPEM = pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(weak))
		ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		ecDER, _ := x509.MarshalECPrivateKey(ec)
		p.ecKeyPEM = pemOf("EC PRIVATE KEY", ecDER)
		p.leafPKCS8, _ = x509.MarshalPKCS8PrivateKey(leafKey)
		p.otherPKCS8, _ = x509.MarshalPKCS8PrivateKey(other)
		pkiData = p
	})
	if pkiData == nil {
		t.Fatal("the test PKI was not made")
	}
	return pkiData
}

// sslBody is a PUT .../ssltermination body.
func sslBody(fields map[string]any) string {
	b, err := json.Marshal(map[string]any{"sslTermination": fields})
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestSSLTermination(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		db := filepath.Join(t.TempDir(), "lbaas.db")
		var log logutil.Buffer
		sslTermination(t, newEnv(t, withManualActivation(), withDatabase(db), withLog(&log)), "sqlite3", db)
		checkLog(t, &log)
	})
	t.Run("postgres", func(t *testing.T) {
		db := pgtest.NewDatabase(t)
		var log logutil.Buffer
		sslTermination(t, newEnv(t, withManualActivation(), withDatabase(db), withLog(&log)), "pgx", db)
		checkLog(t, &log)
	})
}

// withLog sends the server's log, at debug level, to w.
func withLog(w io.Writer) envOption {
	return func(c *server.Config) {
		c.Logger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
}

// checkLog: the server logged (the check can see something) and no line
// holds the key.
func checkLog(t *testing.T, log *logutil.Buffer) {
	t.Helper()
	text := log.String()
	if text == "" {
		t.Fatal("the server logged nothing: the log check sees nothing")
	}
	checkNoKey(t, sslPKI(t), "the server's log", []byte(text))
}

func sslTermination(t *testing.T, e *env, driver, db string) {
	p := sslPKI(t)
	id := e.createLB(simpleLB)
	lb := "/loadbalancers/" + itoa(id)
	// Busy (BUILD): 422, nothing stored.
	full := sslBody(map[string]any{"certificate": p.leafPEM, "privatekey": p.leafKeyPEM,
		"intermediateCertificate": p.interPEM + p.caPEM, "securePort": 443})
	featureFault(t, e, 422, "PUT", lb+"/ssltermination", full, "BUILD")
	e.activate()
	featureFault(t, e, 404, "GET", lb+"/ssltermination", "", "No SSL termination")
	featureFault(t, e, 404, "DELETE", lb+"/ssltermination", "", "No SSL termination")
	// The default profile's ciphers while none is configured.
	if got := e.mustCall(200, "GET", lb+"/ssltermination/ciphers", "")["ciphers"].([]any); len(got) != 15 {
		t.Errorf("default ciphers: %v", got)
	}

	// Bad input: the fault names the field, nothing changes.
	for _, c := range []struct{ body, field string }{
		{`{}`, "sslTermination: is required"},
		{sslBody(map[string]any{"securePort": 443}), "needs certificate, privatekey and securePort"},
		{sslBody(map[string]any{"certificate": p.leafPEM, "privatekey": p.leafKeyPEM}), "needs certificate, privatekey and securePort"},
		{sslBody(map[string]any{"certificate": p.leafPEM, "securePort": 443}), "certificate and privatekey together"},
		{sslBody(map[string]any{"certificate": "not a pem", "privatekey": p.leafKeyPEM, "securePort": 443}), "sslTermination.certificate: is not PEM"},
		{sslBody(map[string]any{"certificate": p.leafPEM, "privatekey": "junk", "securePort": 443}), "sslTermination.privatekey: must be one PEM private key"},
		{sslBody(map[string]any{"certificate": p.leafPEM, "privatekey": p.otherKeyPEM, "securePort": 443}), "sslTermination.privatekey: does not match"},
		{sslBody(map[string]any{"certificate": p.weakPEM, "privatekey": p.weakKeyPEM, "securePort": 443}), "at least 2048 bits (got 1024)"},
		{sslBody(map[string]any{"certificate": p.leafPEM, "privatekey": p.ecKeyPEM, "securePort": 443}), "ECDSA keys are not accepted"},
		{sslBody(map[string]any{"certificate": p.expiredPEM, "privatekey": p.leafKeyPEM, "securePort": 443}), "sslTermination.certificate: expired"},
		{sslBody(map[string]any{"certificate": p.futurePEM, "privatekey": p.leafKeyPEM, "securePort": 443}), "sslTermination.certificate: is not valid before"},
		{sslBody(map[string]any{"certificate": p.sha1PEM, "privatekey": p.leafKeyPEM, "intermediateCertificate": p.interPEM, "securePort": 443}),
			"sslTermination.certificate: is signed with SHA1-RSA"},
		// Out of order: the root first.
		{sslBody(map[string]any{"certificate": p.leafPEM, "privatekey": p.leafKeyPEM, "intermediateCertificate": p.caPEM + p.interPEM, "securePort": 443}),
			"sslTermination.intermediateCertificate[0]: does not sign"},
		// Not signing the leaf at all.
		{sslBody(map[string]any{"certificate": p.leafPEM, "privatekey": p.leafKeyPEM, "intermediateCertificate": p.caPEM, "securePort": 443}),
			"sslTermination.intermediateCertificate[0]: does not sign"},
		{sslBody(map[string]any{"certificate": p.leafPEM, "privatekey": p.leafKeyPEM, "securePort": 80}), "sslTermination.securePort: must differ"},
		{sslBody(map[string]any{"certificate": p.leafPEM, "privatekey": p.leafKeyPEM, "securePort": 70000}), "sslTermination.securePort"},
		{sslBody(map[string]any{"certificate": p.leafPEM, "privatekey": p.leafKeyPEM, "securePort": 443, "cipherProfile": "ProfileA"}), "sslTermination.cipherProfile"},
		{sslBody(map[string]any{"certificate": p.leafPEM, "privatekey": p.leafKeyPEM, "securePort": 443,
			"securityProtocols": []any{map[string]any{"securityProtocolName": "TLS_12", "securityProtocolStatus": "DISABLED"}}}),
			"sslTermination.securityProtocols[0].securityProtocolName"},
	} {
		out := featureFault(t, e, 400, "PUT", lb+"/ssltermination", c.body, c.field)
		if b, _ := json.Marshal(out); holdsKeyLines(p, string(b)) {
			t.Errorf("a fault quotes the private key: %s", b)
		}
	}

	// Create: 200 with the configuration, never the key.
	code, raw := e.raw("PUT", "/v1.0/1234"+lb+"/ssltermination", e.token, full)
	if code != 200 {
		t.Fatalf("PUT: %d %s", code, raw)
	}
	checkNoKey(t, p, "PUT answer", raw)
	if st := featureLBStatus(t, e, lb); st != "PENDING_UPDATE" {
		t.Errorf("after PUT: %s, want PENDING_UPDATE", st)
	}
	featureFault(t, e, 422, "PUT", lb+"/ssltermination", sslBody(map[string]any{"enabled": false}), "PENDING_UPDATE")
	featureFault(t, e, 422, "DELETE", lb+"/ssltermination", "", "PENDING_UPDATE")
	e.activate()
	want := map[string]any{"sslTermination": map[string]any{
		"certificate": p.leafPEM, "intermediateCertificate": p.interPEM + p.caPEM, "enabled": true, "securePort": float64(443),
		"secureTrafficOnly": false, "cipherProfile": "default", "cipherSuite": "legacy",
		"sslFingerprint": fingerprint(t, p.leafPEM), "sslCommonName": "www.example.com",
		"securityProtocols": []any{
			map[string]any{"securityProtocolName": "TLS_10", "securityProtocolStatus": "ENABLED"},
			map[string]any{"securityProtocolName": "TLS_11", "securityProtocolStatus": "ENABLED"},
		},
	}}
	wantJSON, _ := json.Marshal(want)
	featureJSON(t, e, lb+"/ssltermination", string(wantJSON))
	var put any
	if err := json.Unmarshal(raw, &put); err != nil || !jsonEqual(put, want) {
		t.Errorf("PUT answered %s, want %s", raw, wantJSON)
	}
	_, got := e.raw("GET", "/v1.0/1234"+lb+"/ssltermination", e.token, "")
	checkNoKey(t, p, "GET", got)
	_, got = e.raw("GET", "/v1.0/1234"+lb, e.token, "")
	checkNoKey(t, p, "GET load balancer", got)

	// Attributes only: the certificate and key stay.
	e.mustCall(200, "PUT", lb+"/ssltermination", sslBody(map[string]any{
		"secureTrafficOnly": true, "cipherProfile": "CLBCipherPolicy2019-05",
		"securityProtocols": []any{map[string]any{"securityProtocolName": "TLS_10", "securityProtocolStatus": "DISABLED"}}}))
	e.activate()
	tls := e.mustCall(200, "GET", lb+"/ssltermination", "")["sslTermination"].(map[string]any)
	if tls["certificate"] != p.leafPEM || tls["secureTrafficOnly"] != true || tls["cipherProfile"] != "CLBCipherPolicy2019-05" ||
		tls["securityProtocols"].([]any)[0].(map[string]any)["securityProtocolStatus"] != "DISABLED" {
		t.Errorf("after an attribute update: %v", tls)
	}
	if got := e.mustCall(200, "GET", lb+"/ssltermination/ciphers", "")["ciphers"].([]any); len(got) != 4 ||
		got[0].(map[string]any)["name"] != "TLS_AES_256_GCM_SHA384" {
		t.Errorf("CLBCipherPolicy2019-05 ciphers: %v", got)
	}

	// Linode's cipher_suite: recommended is CLBCipherPolicy2019-05 (set
	// above, so answered), legacy the default profile; another profile is
	// neither (not answered).
	if tls["cipherSuite"] != "recommended" {
		t.Errorf("cipherSuite of CLBCipherPolicy2019-05: %v, want recommended", tls["cipherSuite"])
	}
	featureFault(t, e, 400, "PUT", lb+"/ssltermination", sslBody(map[string]any{"cipherSuite": "modern"}), "sslTermination.cipherSuite: must be recommended or legacy")
	featureFault(t, e, 400, "PUT", lb+"/ssltermination", sslBody(map[string]any{"cipherSuite": "legacy", "cipherProfile": "CLBCipherPolicy2019-05"}),
		"contradicts cipherProfile")
	for _, c := range []struct{ body, profile, suite string }{
		{sslBody(map[string]any{"cipherSuite": "legacy"}), "default", "legacy"},
		{sslBody(map[string]any{"cipherProfile": "CLBCipherPolicy2017-08"}), "CLBCipherPolicy2017-08", ""},
		{sslBody(map[string]any{"cipherSuite": "recommended", "cipherProfile": "CLBCipherPolicy2019-05"}), "CLBCipherPolicy2019-05", "recommended"},
	} {
		out := e.mustCall(200, "PUT", lb+"/ssltermination", c.body)["sslTermination"].(map[string]any)
		e.activate()
		if suite, _ := out["cipherSuite"].(string); out["cipherProfile"] != c.profile || suite != c.suite {
			t.Errorf("PUT %s: cipherProfile %v cipherSuite %q, want %s %q", c.body, out["cipherProfile"], suite, c.profile, c.suite)
		}
	}

	// What the database holds: the key sealed, never in clear.
	checkStoredNoKey(t, driver, db, p)

	// The load balancer's port may not become the secure port, nor its
	// protocol a secure one.
	featureFault(t, e, 400, "PUT", lb, `{"loadBalancer":{"port":443}}`, "loadBalancer.port")
	featureFault(t, e, 400, "PUT", lb, `{"loadBalancer":{"protocol":"HTTPS"}}`, "loadBalancer.protocol")

	// SSL termination on a secure protocol is refused.
	https := e.createLB(featureHTTPSLB)
	e.activate()
	featureFault(t, e, 400, "PUT", "/loadbalancers/"+itoa(https)+"/ssltermination",
		sslBody(map[string]any{"certificate": p.leafPEM, "privatekey": p.leafKeyPEM, "securePort": 8443}), "non-secure protocol (this one is HTTPS)")

	udp := e.createLB(featureUDPLB)
	e.activate()
	featureFault(t, e, 400, "PUT", "/loadbalancers/"+itoa(udp)+"/ssltermination",
		sslBody(map[string]any{"certificate": p.leafPEM, "privatekey": p.leafKeyPEM, "securePort": 8443}), "not available for UDP")
	featureFault(t, e, 400, "PUT", lb, `{"loadBalancer":{"protocol":"UDP"}}`, "loadBalancer.protocol")

	// DELETE: 200, gone, and so is the sealed key.
	featureChange(t, e, 200, "DELETE", lb, "/ssltermination", "")
	featureFault(t, e, 404, "GET", lb+"/ssltermination", "", "No SSL termination")
	if n := sealedKeys(t, driver, db); n != 0 {
		t.Errorf("%d sealed keys stored after DELETE", n)
	}
	// Deleting the load balancer removes its key too.
	e.mustCall(200, "PUT", lb+"/ssltermination", full)
	e.activate()
	if n := sealedKeys(t, driver, db); n != 1 {
		t.Errorf("%d sealed keys stored, want 1", n)
	}
	e.mustCall(202, "DELETE", lb, "")
	if n := sealedKeys(t, driver, db); n != 0 {
		t.Errorf("%d sealed keys stored after the load balancer's deletion", n)
	}
}

// sealedKeys counts the rows of load_balancers holding a sealed key.
func sealedKeys(t *testing.T, driver, url string) int {
	t.Helper()
	db, err := sql.Open(driver, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM load_balancers WHERE ssl_termination LIKE '%sealedKey%'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// checkNoKey fails when text holds the private key, in PEM or in any
// line of its base64.
func checkNoKey(t *testing.T, p *testPKI, what string, text []byte) {
	t.Helper()
	s := string(text)
	if strings.Contains(s, "PRIVATE KEY") || strings.Contains(s, "privatekey") || strings.Contains(s, "privateKey") {
		t.Errorf("%s holds a private key: %s", what, text)
	}
	if holdsKeyLines(p, s) {
		t.Errorf("%s holds a line of the private key", what)
	}
}

// holdsKeyLines tells whether s holds a line of the base64 of a key (the
// termination's, or the other one certificate mappings use).
func holdsKeyLines(p *testPKI, s string) bool {
	for _, key := range []string{p.leafKeyPEM, p.otherKeyPEM} {
		for _, line := range strings.Split(key, "\n")[1:5] {
			if strings.Contains(s, line) || strings.Contains(s, strings.ReplaceAll(line, "/", `\/`)) {
				return true
			}
		}
	}
	return false
}

// checkStoredNoKey reads every column of every table as text and fails if
// one holds a key (PEM, its base64, or its DER); it checks that it saw a
// sealed key where they are kept (load_balancers.ssl_termination).
func checkStoredNoKey(t *testing.T, driver, url string, p *testPKI) {
	t.Helper()
	db, err := sql.Open(driver, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	list := "SELECT name FROM sqlite_master WHERE type = 'table'"
	if driver == "pgx" {
		list = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
	}
	var tables []string
	rows, err := db.QueryContext(context.Background(), list)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	if !slices.Contains(tables, "load_balancers") {
		t.Fatalf("tables %v: no load_balancers", tables)
	}
	sealed := false
	for _, table := range tables {
		if checkTableNoKey(t, db, table, p) {
			sealed = true
		}
	}
	if !sealed {
		t.Error("no sealed key found in load_balancers.ssl_termination: the test looked at the wrong place")
	}
}

// checkTableNoKey is checkStoredNoKey for one table; it tells whether
// the table has a sealed key in an ssl_termination column.
func checkTableNoKey(t *testing.T, db *sql.DB, table string, p *testPKI) bool {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), `SELECT * FROM "`+table+`"`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	ders := []string{string(p.leafPKCS8[len(p.leafPKCS8)-64:]), string(p.otherPKCS8[len(p.otherPKCS8)-64:])}
	sealed := false
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			var s string
			switch v := v.(type) {
			case string:
				s = v
			case []byte:
				s = string(v)
			default:
				continue
			}
			column := table + "." + cols[i]
			checkNoKey(t, p, "column "+column, []byte(s))
			for _, der := range ders {
				if strings.Contains(s, der) {
					t.Errorf("column %s holds a key's DER", column)
				}
			}
			if column == "load_balancers.ssl_termination" && strings.Contains(s, "sealedKey") {
				sealed = true
			}
		}
	}
	return sealed
}

// The reference's XML request, in its shape (attributes, certificate
// elements, securityProtocols), with certificates made at test time: it
// sets what the JSON request sets.
func TestSSLTerminationXML(t *testing.T) {
	e := newEnv(t, withManualActivation())
	p := sslPKI(t)
	id := e.createLB(simpleLB)
	e.activate()
	path := "/v1.0/1234/loadbalancers/" + itoa(id) + "/ssltermination"
	doc := `<?xml version="1.0" encoding="UTF-8"?>
<sslTermination xmlns="http://docs.openstack.org/loadbalancers/api/v1.0" enabled="true" securePort="500" secureTrafficOnly="false" cipherProfile="CLBCipherPolicy2017-08">
<privatekey>` + p.leafKeyPEM + `</privatekey>
<certificate>` + p.leafPEM + `</certificate>
<intermediateCertificate>` + p.interPEM + `</intermediateCertificate>
<securityProtocols>
    <securityProtocol securityProtocolName="TLS_10" securityProtocolStatus="DISABLED"/>
</securityProtocols>
</sslTermination>`
	code, _, body := e.request("PUT", path, []byte(doc), "Content-Type", "application/xml", "Accept", "application/xml")
	if code != 200 {
		t.Fatalf("PUT as XML: %d %s", code, body)
	}
	checkNoKey(t, p, "the XML answer", body)
	e.activate()
	got := e.mustCall(200, "GET", "/loadbalancers/"+itoa(id)+"/ssltermination", "")["sslTermination"].(map[string]any)
	// XML text is trimmed (the gateway's XML reading): the PEM blocks come
	// without their final newline.
	want := map[string]any{"certificate": strings.TrimSpace(p.leafPEM), "intermediateCertificate": strings.TrimSpace(p.interPEM), "enabled": true,
		"securePort": float64(500), "secureTrafficOnly": false, "cipherProfile": "CLBCipherPolicy2017-08",
		"sslFingerprint": fingerprint(t, p.leafPEM), "sslCommonName": "www.example.com",
		"securityProtocols": []any{
			map[string]any{"securityProtocolName": "TLS_10", "securityProtocolStatus": "DISABLED"},
			map[string]any{"securityProtocolName": "TLS_11", "securityProtocolStatus": "ENABLED"},
		}}
	if !jsonEqual(got, want) {
		t.Errorf("after the XML PUT:\n got %v\nwant %v", got, want)
	}
}

// httpsRedirect on an HTTP load balancer needs SSL termination enabled on
// securePort 443 with secureTrafficOnly (the reference's ssl-termination.rst
// and httpsRedirect), and the termination cannot leave that shape, nor go,
// while the load balancer redirects.
func TestHTTPSRedirectWithSSLTermination(t *testing.T) {
	e := newEnv(t, withManualActivation())
	id := e.createLB(simpleLB)
	e.activate()
	lb := "/loadbalancers/" + itoa(id)
	p := sslPKI(t)
	redirect := func(on bool) string { return `{"loadBalancer":{"httpsRedirect":` + strconv.FormatBool(on) + `}}` }

	featureFault(t, e, 400, "PUT", lb, redirect(true), "loadBalancer.httpsRedirect")
	e.mustCall(200, "PUT", lb+"/ssltermination", sslBody(map[string]any{"certificate": p.leafPEM, "privatekey": p.leafKeyPEM, "securePort": 443}))
	e.activate()
	featureFault(t, e, 400, "PUT", lb, redirect(true), "secureTrafficOnly true")
	e.mustCall(200, "PUT", lb+"/ssltermination", sslBody(map[string]any{"secureTrafficOnly": true}))
	e.activate()
	featureChange(t, e, 202, "PUT", lb, "", redirect(true))
	if d := featureDetails(t, e, lb); d["httpsRedirect"] != true {
		t.Errorf("httpsRedirect not on: %v", d["httpsRedirect"])
	}
	featureFault(t, e, 400, "PUT", lb+"/ssltermination", sslBody(map[string]any{"secureTrafficOnly": false}), "turn httpsRedirect off first")
	featureFault(t, e, 400, "PUT", lb+"/ssltermination", sslBody(map[string]any{"enabled": false}), "turn httpsRedirect off first")
	featureFault(t, e, 400, "DELETE", lb+"/ssltermination", "", "turn httpsRedirect off first")
	featureChange(t, e, 202, "PUT", lb, "", redirect(false))
	e.mustCall(200, "DELETE", lb+"/ssltermination", "")
}
