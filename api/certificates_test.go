package api

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
)

// The reference's certificate mapping examples are refused for the
// reasons the reference-examples test gives for excluding them, and no
// other: their certificates expired in 2014 and are signed with SHA-1.
// Otherwise they are a matching key, certificate and intermediate.
func TestReferenceMappingExamplesRefusedOnlyAsDocumented(t *testing.T) {
	dir := "../reference/rackspace-clb-v1/api-reference/methods"
	for file, title := range map[string]string{
		"post-add-certificate-mapping-v1.0-account-loadbalancers-loadbalancerid-ssltermination-certificatemappings.rst":                        "Example Add certificate mapping: JSON request",
		"put-update-certificate-mapping-v1.0-account-loadbalancers-loadbalancerid-ssltermination-certificatemappings-certificatemappingid.rst": "Example Update certificate mapping: JSON request",
	} {
		data, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		at := strings.Index(text, "**"+title+"**")
		if at < 0 {
			t.Fatalf("%s: no example %q", file, title)
		}
		text = text[at:]
		var body struct {
			CertificateMapping struct {
				HostName, PrivateKey, Certificate, IntermediateCertificate string
			}
		}
		if err := json.NewDecoder(strings.NewReader(text[strings.Index(text, "{"):])).Decode(&body); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		m := body.CertificateMapping
		in := mappingPEM(m.Certificate, m.PrivateKey, m.IntermediateCertificate)
		_, errs := parseKeyPair(in, time.Date(2013, 6, 1, 0, 0, 0, 0, time.UTC))
		if want := []string{
			"certificateMapping.certificate: is signed with SHA1-RSA, which TLS clients refuse: it needs a SHA-256 (or stronger) signature",
		}; !slices.Equal(errs, want) {
			t.Errorf("%s in 2013: %q, want %q", title, errs, want)
		}
		var v validation
		if mappingHostName(&v, &lbaasv1.CertificateMapping{HostName: &m.HostName}); len(v) > 0 {
			t.Errorf("%s: host name %v", title, v)
		}
		_, errs = parseKeyPair(in, time.Now())
		if len(errs) != 3 {
			t.Fatalf("%s today: %q, want expiry and SHA-1", title, errs)
		}
		for _, e := range errs {
			if !strings.Contains(e, ": expired on 2014-01-") && !strings.Contains(e, "SHA1-RSA") {
				t.Errorf("%s today: %q, want only expiry and SHA-1", title, e)
			}
		}
	}
}
