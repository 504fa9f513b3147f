package gateway_test

import (
	"crypto/sha256"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openlbaas/lbaas/api"
	"github.com/openlbaas/lbaas/internal/logutil"
	"github.com/openlbaas/lbaas/internal/pgtest"
)

// mappingBody is a certificate mapping request body.
func mappingBody(fields map[string]any) string {
	b, err := json.Marshal(map[string]any{"certificateMapping": fields})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// fingerprint is the SHA-256 of a PEM certificate's DER, as AB:CD:...
func fingerprint(t *testing.T, certPEM string) string {
	t.Helper()
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil {
		t.Fatal("not PEM")
	}
	return strings.ReplaceAll(fmt.Sprintf("% X", sha256.Sum256(block.Bytes)), " ", ":")
}

// Certificate mappings (certificatemappings.rst) on SQLite and
// PostgreSQL: every fault names its field and changes nothing, the limit,
// 422 while busy, and no answer, column or log line holds a key.
func TestCertificateMappings(t *testing.T) {
	limits := api.DefaultLimits
	limits.CertificateMappings = 3
	t.Run("sqlite", func(t *testing.T) {
		db := filepath.Join(t.TempDir(), "lbaas.db")
		var log logutil.Buffer
		certificateMappings(t, newEnv(t, withManualActivation(), withDatabase(db), withLog(&log), withLimits(limits)), "sqlite3", db)
		checkLog(t, &log)
	})
	t.Run("postgres", func(t *testing.T) {
		db := pgtest.NewDatabase(t)
		var log logutil.Buffer
		certificateMappings(t, newEnv(t, withManualActivation(), withDatabase(db), withLog(&log), withLimits(limits)), "pgx", db)
		checkLog(t, &log)
	})
}

func certificateMappings(t *testing.T, e *env, driver, db string) {
	p := sslPKI(t)
	id := e.createLB(simpleLB)
	e.activate()
	lb := "/loadbalancers/" + itoa(id)
	maps := lb + "/ssltermination/certificatemappings"
	api := mappingBody(map[string]any{"hostName": "api.example.com", "certificate": p.otherPEM, "privateKey": p.otherKeyPEM,
		"intermediateCertificate": p.interPEM})

	// Without SSL termination there are no mappings: its certificate is
	// the catch-all they need.
	featureFault(t, e, 404, "GET", maps, "", "No SSL termination")
	featureFault(t, e, 404, "POST", maps, api, "No SSL termination")
	featureFault(t, e, 404, "GET", maps+"/1", "", "No SSL termination")

	e.mustCall(200, "PUT", lb+"/ssltermination", sslBody(map[string]any{"certificate": p.leafPEM, "privatekey": p.leafKeyPEM,
		"intermediateCertificate": p.interPEM, "securePort": 443}))
	// Busy: 422, nothing stored.
	featureFault(t, e, 422, "POST", maps, api, "PENDING_UPDATE")
	e.activate()
	featureJSON(t, e, maps, `{"certificateMappings":[]}`)

	// Bad input: a 400 naming the field; nothing changes, and no fault
	// quotes a key.
	with := func(k string, v any) string {
		f := map[string]any{"hostName": "api.example.com", "certificate": p.otherPEM, "privateKey": p.otherKeyPEM}
		if v == nil {
			delete(f, k)
		} else {
			f[k] = v
		}
		return mappingBody(f)
	}
	for _, c := range []struct{ body, field string }{
		{`{}`, "certificateMapping: is required"},
		{with("hostName", nil), "certificateMapping.hostName: is required"},
		{with("certificate", nil), "hostName, certificate and privateKey are required"},
		{with("privateKey", nil), "hostName, certificate and privateKey are required"},
		// The termination's spelling is not the mapping's (reference).
		{mappingBody(map[string]any{"hostName": "api.example.com", "certificate": p.otherPEM, "privatekey": p.otherKeyPEM}), "privatekey"},
		{with("hostName", "*"), "certificateMapping.hostName: \"*\" is not a host name"},
		{with("hostName", "a*.example.com"), "certificateMapping.hostName"},
		{with("hostName", "*.*.example.com"), "certificateMapping.hostName"},
		{with("hostName", "api.example.com."), "certificateMapping.hostName"},
		{with("hostName", "bad_name.example.com"), "certificateMapping.hostName"},
		{with("hostName", "-api.example.com"), "certificateMapping.hostName"},
		{with("hostName", "192.0.2.1"), "is an address, not a host name"},
		{with("hostName", "2001:db8::1"), "certificateMapping.hostName"},
		{with("hostName", strings.Repeat("a.", 127)+"com"), "certificateMapping.hostName"},
		{with("certificate", "not a pem"), "certificateMapping.certificate: is not PEM"},
		{with("certificate", p.leafPEM+p.otherPEM), "certificateMapping.certificate: must be one PEM certificate"},
		{with("privateKey", "junk"), "certificateMapping.privateKey: must be one PEM private key"},
		{with("privateKey", p.leafKeyPEM), "certificateMapping.privateKey: does not match"},
		{mappingBody(map[string]any{"hostName": "weak.example.com", "certificate": p.weakPEM, "privateKey": p.weakKeyPEM}), "at least 2048 bits (got 1024)"},
		{with("privateKey", p.ecKeyPEM), "ECDSA keys are not accepted"},
		{mappingBody(map[string]any{"hostName": "old.example.com", "certificate": p.expiredPEM, "privateKey": p.leafKeyPEM}), "certificateMapping.certificate: expired"},
		{mappingBody(map[string]any{"hostName": "new.example.com", "certificate": p.futurePEM, "privateKey": p.leafKeyPEM}), "certificateMapping.certificate: is not valid before"},
		{mappingBody(map[string]any{"hostName": "sha1.example.com", "certificate": p.sha1PEM, "privateKey": p.leafKeyPEM}), "certificateMapping.certificate: is signed with SHA1-RSA"},
		{with("intermediateCertificate", p.caPEM+p.interPEM), "certificateMapping.intermediateCertificate[0]: does not sign"},
		{with("intermediateCertificate", p.caPEM), "certificateMapping.intermediateCertificate[0]: does not sign"},
		{with("intermediateCertificate", "junk"), "certificateMapping.intermediateCertificate: is not PEM"},
	} {
		out := featureFault(t, e, 400, "POST", maps, c.body, c.field)
		if b, _ := json.Marshal(out); holdsKeyLines(p, string(b)) {
			t.Errorf("a fault quotes a private key: %s", b)
		}
	}

	// Add: 202 with the mapping, never the key; the read-only extension
	// fields tell which certificate it is.
	code, raw := e.raw("POST", "/v1.0/1234"+maps, e.token, api)
	if code != 202 {
		t.Fatalf("POST: %d %s", code, raw)
	}
	checkNoKey(t, p, "POST answer", raw)
	var added struct {
		CertificateMapping map[string]any `json:"certificateMapping"`
	}
	if err := json.Unmarshal(raw, &added); err != nil {
		t.Fatal(err)
	}
	m1 := int(added.CertificateMapping["id"].(float64))
	want := map[string]any{"id": float64(m1), "hostName": "api.example.com", "certificate": p.otherPEM,
		"intermediateCertificate": p.interPEM, "sslFingerprint": fingerprint(t, p.otherPEM), "sslCommonName": "api.example.com"}
	if !jsonEqual(added.CertificateMapping, want) {
		t.Errorf("POST answered %v, want %v", added.CertificateMapping, want)
	}
	if st := featureLBStatus(t, e, lb); st != "PENDING_UPDATE" {
		t.Errorf("after POST: %s, want PENDING_UPDATE", st)
	}
	m1path := maps + "/" + itoa(m1)
	featureFault(t, e, 422, "PUT", m1path, mappingBody(map[string]any{"hostName": "x.example.com"}), "PENDING_UPDATE")
	featureFault(t, e, 422, "DELETE", m1path, "", "PENDING_UPDATE")
	e.activate()
	got := e.mustCall(200, "GET", m1path, "")["certificateMapping"]
	if !jsonEqual(got, want) {
		t.Errorf("GET %v, want %v", got, want)
	}
	_, raw = e.raw("GET", "/v1.0/1234"+m1path, e.token, "")
	checkNoKey(t, p, "GET", raw)

	// Host names are unique per load balancer, in any case; overlapping
	// ones (a wildcard and a name it covers) are not duplicates.
	featureFault(t, e, 400, "POST", maps, with("hostName", "API.Example.COM"), "is the host name of certificate mapping "+itoa(m1))
	out := e.mustCall(202, "POST", maps, mappingBody(map[string]any{"hostName": "*.Example.com", "certificate": p.leafPEM, "privateKey": p.leafKeyPEM}))
	m2 := int(out["certificateMapping"].(map[string]any)["id"].(float64))
	if h := out["certificateMapping"].(map[string]any)["hostName"]; h != "*.example.com" || m2 == m1 {
		t.Errorf("second mapping: id %d host %v", m2, h)
	}
	e.activate()
	featureJSON(t, e, maps, fmt.Sprintf(`{"certificateMappings":[{"certificateMapping":{"id":%d,"hostName":"api.example.com"}},
		{"certificateMapping":{"id":%d,"hostName":"*.example.com"}}]}`, m1, m2))

	// Update: each attribute alone, validated with what is stored.
	m2path := maps + "/" + itoa(m2)
	featureFault(t, e, 400, "PUT", m2path, `{"certificateMapping":{}}`, "give at least one of")
	featureFault(t, e, 400, "PUT", m2path, mappingBody(map[string]any{"hostName": "api.example.com"}), "is the host name of certificate mapping")
	featureFault(t, e, 400, "PUT", m2path, mappingBody(map[string]any{"hostName": "not valid"}), "certificateMapping.hostName")
	// A certificate alone must match the stored key.
	featureFault(t, e, 400, "PUT", m2path, mappingBody(map[string]any{"certificate": p.otherPEM}), "privateKey (the stored one): does not match")
	featureFault(t, e, 400, "PUT", m2path, mappingBody(map[string]any{"privateKey": p.otherKeyPEM}), "certificateMapping.privateKey: does not match")
	featureFault(t, e, 400, "PUT", m2path, mappingBody(map[string]any{"intermediateCertificate": p.caPEM}), "intermediateCertificate[0]: does not sign")
	featureFault(t, e, 404, "PUT", maps+"/999", mappingBody(map[string]any{"hostName": "x.example.com"}), "Certificate mapping 999 not found")
	featureChange(t, e, 202, "PUT", lb, strings.TrimPrefix(m2path, lb), mappingBody(map[string]any{"hostName": "*.example.org"}))
	featureChange(t, e, 202, "PUT", lb, strings.TrimPrefix(m2path, lb), mappingBody(map[string]any{"intermediateCertificate": p.interPEM}))
	featureChange(t, e, 202, "PUT", lb, strings.TrimPrefix(m2path, lb), mappingBody(map[string]any{"certificate": p.otherPEM, "privateKey": p.otherKeyPEM}))
	got = e.mustCall(200, "GET", m2path, "")["certificateMapping"]
	want2 := map[string]any{"id": float64(m2), "hostName": "*.example.org", "certificate": p.otherPEM,
		"intermediateCertificate": p.interPEM, "sslFingerprint": fingerprint(t, p.otherPEM), "sslCommonName": "api.example.com"}
	if !jsonEqual(got, want2) {
		t.Errorf("after the updates: %v, want %v", got, want2)
	}

	// CERTIFICATE_MAPPING_LIMIT (3 here), as /limits shows it.
	var limit float64
	for _, l := range e.mustCall(200, "GET", "/loadbalancers/absolutelimits", "")["absolute"].([]any) {
		if l.(map[string]any)["name"] == "CERTIFICATE_MAPPING_LIMIT" {
			limit = l.(map[string]any)["value"].(float64)
		}
	}
	if limit != 3 {
		t.Fatalf("CERTIFICATE_MAPPING_LIMIT shows %v, want 3", limit)
	}
	e.mustCall(202, "POST", maps, with("hostName", "three.example.com"))
	e.activate()
	featureFault(t, e, 413, "POST", maps, with("hostName", "four.example.com"), "CERTIFICATE_MAPPING_LIMIT: a load balancer may have at most 3 certificate mappings")

	// What the database holds: keys sealed, never in clear; one per mapping.
	checkStoredNoKey(t, driver, db, p)
	if n := sealedKeyCount(t, e); n != 4 {
		t.Errorf("%d sealed keys, want 4 (the termination's and 3 mappings')", n)
	}

	// Delete: 202, gone with its key.
	featureChange(t, e, 202, "DELETE", lb, strings.TrimPrefix(m1path, lb), "")
	featureFault(t, e, 404, "GET", m1path, "", "Certificate mapping "+itoa(m1)+" not found")
	featureFault(t, e, 404, "DELETE", m1path, "", "not found")
	if n := sealedKeyCount(t, e); n != 3 {
		t.Errorf("%d sealed keys after deleting a mapping, want 3", n)
	}
	// An id is not given again while the termination lives.
	out = e.mustCall(202, "POST", maps, with("hostName", "four.example.com"))
	if id := int(out["certificateMapping"].(map[string]any)["id"].(float64)); id == m1 || id == m2 {
		t.Errorf("a new mapping got the id %d of an earlier one", id)
	}
	e.activate()
	// Deleting the termination deletes its mappings and their keys.
	featureChange(t, e, 200, "DELETE", lb, "/ssltermination", "")
	featureFault(t, e, 404, "GET", maps, "", "No SSL termination")
	if n := sealedKeyCount(t, e); n != 0 {
		t.Errorf("%d sealed keys after deleting the termination", n)
	}
	// And so does deleting the load balancer.
	e.mustCall(200, "PUT", lb+"/ssltermination", sslBody(map[string]any{"certificate": p.leafPEM, "privatekey": p.leafKeyPEM, "securePort": 443}))
	e.activate()
	e.mustCall(202, "POST", maps, api)
	e.activate()
	if n := sealedKeyCount(t, e); n != 2 {
		t.Errorf("%d sealed keys, want 2", n)
	}
	e.mustCall(202, "DELETE", lb, "")
	if n := sealedKeyCount(t, e); n != 0 {
		t.Errorf("%d sealed keys after deleting the load balancer", n)
	}
}

// sealedKeyCount counts the sealed keys of live load balancers, as the
// start-up check and a rotation see them.
func sealedKeyCount(t *testing.T, e *env) int {
	t.Helper()
	keys, err := e.srv.Store.SealedKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

// The reference's XML shapes: the add request (hostName an attribute,
// the PEM blocks elements), the list of id/hostName attributes, the
// mapping with its certificates as elements.
func TestCertificateMappingsXML(t *testing.T) {
	e := newEnv(t, withManualActivation())
	p := sslPKI(t)
	id := e.createLB(simpleLB)
	e.activate()
	lb := "/loadbalancers/" + itoa(id)
	e.mustCall(200, "PUT", lb+"/ssltermination", sslBody(map[string]any{"certificate": p.leafPEM, "privatekey": p.leafKeyPEM, "securePort": 443}))
	e.activate()
	path := "/v1.0/1234" + lb + "/ssltermination/certificatemappings"
	doc := `<certificateMapping xmlns="http://docs.openstack.org/loadbalancers/api/v1.0" hostName="rackspace.com">
<privateKey>` + p.otherKeyPEM + `</privateKey>
<certificate>` + p.otherPEM + `</certificate>
<intermediateCertificate>` + p.interPEM + `</intermediateCertificate>
</certificateMapping>`
	code, _, body := e.request("POST", path, []byte(doc), "Content-Type", "application/xml", "Accept", "application/xml")
	if code != 202 {
		t.Fatalf("POST as XML: %d %s", code, body)
	}
	checkNoKey(t, p, "the XML answer", body)
	e.activate()
	var added struct {
		ID       int    `xml:"id,attr"`
		HostName string `xml:"hostName,attr"`
		Cert     string `xml:"certificate"`
		Inter    string `xml:"intermediateCertificate"`
		CN       string `xml:"sslCommonName,attr"`
	}
	if err := xml.Unmarshal(body, &added); err != nil || added.HostName != "rackspace.com" || added.ID == 0 ||
		strings.TrimSpace(added.Cert) != strings.TrimSpace(p.otherPEM) || strings.TrimSpace(added.Inter) != strings.TrimSpace(p.interPEM) ||
		added.CN != "api.example.com" {
		t.Fatalf("the XML answer %s: %+v %v", body, added, err)
	}
	code, _, body = e.request("GET", path, nil, "Accept", "application/xml")
	want := `<certificateMappings xmlns="http://docs.openstack.org/loadbalancers/api/v1.0"><certificateMapping id="` + itoa(added.ID) + `" hostName="rackspace.com"></certificateMapping></certificateMappings>`
	if code != 200 || !strings.Contains(string(body), want) {
		t.Errorf("the XML list: %d %s, want %s", code, body, want)
	}
}
