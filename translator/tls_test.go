package translator

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// testCert is a stand-in certificate: the translator passes PEM through
// (Envoy parses it), so goldens need no real key.
func testCert(name string) Certificate {
	return Certificate{
		Chain:      fmt.Sprintf("-----BEGIN CERTIFICATE-----\n%s leaf\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\n%s intermediate\n-----END CERTIFICATE-----\n", name, name),
		PrivateKey: fmt.Sprintf("-----BEGIN PRIVATE KEY-----\n%s key\n-----END PRIVATE KEY-----\n", name),
	}
}

// profile is a cipher profile of ciphers.rst: the reference's table is
// ordered so that each profile is a prefix of it (CLBCipherPolicy2019-05
// the first 4 suites, CLBCipherPolicy2017-08 the first 14, default all 15);
// api.CipherProfiles holds the same lists (TestCipherProfilesMap in
// internal/controlplane checks each maps).
func profile(n int) []string {
	var out []string
	for _, c := range Ciphers[:n] {
		out = append(out, c.Reference)
	}
	return out
}

func terminated(id uint32, t TLSTermination) *LoadBalancer {
	t.SecurePort = max(t.SecurePort, 443)
	if t.Ciphers == nil {
		t.Ciphers = profile(len(Ciphers))
	}
	if t.Default.Chain == "" {
		t.Default = testCert("default")
	}
	return &LoadBalancer{ID: id, Protocol: "HTTP", Port: 80, Algorithm: "ROUND_ROBIN", TimeoutSeconds: 30,
		VIPs: []VIP{{fmt.Sprintf("127.1.1.%d", id%250)}}, Nodes: []Node{node(1, "10.0.0.1", "PRIMARY", "ENABLED", 1)},
		TLS: &t}
}

func init() {
	withFeatures := terminated(40, TLSTermination{TLS10: true, TLS11: true})
	withFeatures.AccessList = []NetworkItem{{"203.0.113.0/24", "DENY"}}
	withFeatures.Throttle = &Throttle{MaxConnections: 100, MaxConnectionRate: 10, RateInterval: 1}
	withFeatures.ConnectionLogging = true
	redirect := terminated(42, TLSTermination{SecureTrafficOnly: true})
	redirect.HTTPSRedirect = true
	mappings := terminated(43, TLSTermination{Mappings: []CertificateMapping{
		{ID: 7, HostName: "www.example.com", Certificate: testCert("www")},
		{ID: 8, HostName: "*.example.org", Certificate: testCert("org")},
		{ID: 9, HostName: "api.example.net", Certificate: testCert("api")},
	}})
	mappings.AccessList = []NetworkItem{{"0.0.0.0/0", "DENY"}, {"198.51.100.0/24", "ALLOW"}}
	tcp := terminated(48, TLSTermination{SecurePort: 5433})
	tcp.Protocol, tcp.Port = "TCP", 5432
	for name, lb := range map[string]*LoadBalancer{
		"tls_http_terminated":        withFeatures,
		"tls_secure_only":            terminated(41, TLSTermination{SecureTrafficOnly: true, TLS11: true, Ciphers: profile(14)}),
		"tls_redirect":               redirect,
		"tls_mappings":               mappings,
		"tls_profile_default":        terminated(44, TLSTermination{Ciphers: profile(15)}),
		"tls_profile_clb_2017_08":    terminated(45, TLSTermination{Ciphers: profile(14)}),
		"tls_profile_clb_2019_05":    terminated(46, TLSTermination{Ciphers: profile(4)}),
		"tls_tls10_enabled":          terminated(47, TLSTermination{TLS10: true}),
		"tls_tcp_terminated_no_alpn": tcp,
	} {
		goldenCases[name] = lb
	}
}

// The mapping table: every suite of the reference has a BoringSSL name
// or a reason it has none, names are unique, and a profile keeps its
// order.
func TestCipherTable(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range Ciphers {
		if (c.BoringSSL == "") == (c.Reason == "") {
			t.Errorf("%s: give a BoringSSL name or a reason for none, not both", c.Reference)
		}
		if seen[c.Reference] || (c.BoringSSL != "" && seen[c.BoringSSL]) {
			t.Errorf("%s (%s) appears twice", c.Reference, c.BoringSSL)
		}
		seen[c.Reference], seen[c.BoringSSL] = true, c.BoringSSL != ""
		if strings.HasPrefix(c.Reference, "TLS_") != (c.Reason == reasonTLS13) {
			t.Errorf("%s: only the TLS 1.3 suites (TLS_*) are dropped as TLS 1.3", c.Reference)
		}
	}
	for _, tc := range []struct {
		in   []string
		want []string
	}{
		{profile(4), []string{"ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256"}},
		{profile(14), []string{"ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-SHA", "ECDHE-RSA-AES128-SHA",
			"AES256-GCM-SHA384", "AES256-SHA", "AES128-GCM-SHA256", "AES128-SHA"}},
		{profile(15), []string{"ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-SHA", "ECDHE-RSA-AES128-SHA",
			"AES256-GCM-SHA384", "AES256-SHA", "AES128-GCM-SHA256", "AES128-SHA", "DES-CBC3-SHA"}},
	} {
		got, err := boringCiphers(tc.in)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%d suites: got %v, %v; want %v", len(tc.in), got, err, tc.want)
		}
	}
	for _, bad := range [][]string{{"SSL_RSA_WITH_RC4_128_MD5"}, {"TLS_AES_128_GCM_SHA256"}, nil} {
		if got, err := boringCiphers(bad); err == nil {
			t.Errorf("%v: got %v, want an error", bad, got)
		}
	}
}

// What a terminating load balancer's proxies get: the secure port with a
// chain per mapping and the default, certificates only by SDS name, the
// protocol range, the ALPN of HTTP, and secrets named per load balancer.
func TestTerminationShape(t *testing.T) {
	for _, tc := range []struct {
		name       string
		listeners  []string
		secrets    []string
		minVersion tlsv3.TlsParameters_TlsProtocol
	}{
		{"tls_http_terminated", []string{"lb_40", "lb_40_secure"}, []string{"lb_40_tls"}, tlsv3.TlsParameters_TLSv1_0},
		{"tls_secure_only", []string{"lb_41_secure"}, []string{"lb_41_tls"}, tlsv3.TlsParameters_TLSv1_1},
		{"tls_redirect", []string{"lb_42", "lb_42_secure"}, []string{"lb_42_tls"}, tlsv3.TlsParameters_TLSv1_2},
		{"tls_mappings", []string{"lb_43", "lb_43_secure"}, []string{"lb_43_tls", "lb_43_tls_7", "lb_43_tls_8", "lb_43_tls_9"}, tlsv3.TlsParameters_TLSv1_2},
	} {
		lb := goldenCases[tc.name]
		out, err := Translate(lb)
		if err != nil {
			t.Fatal(err)
		}
		var listeners, secrets []string
		for _, l := range out.Envoy.Listeners {
			listeners = append(listeners, l.GetName())
		}
		for _, s := range out.Envoy.Secrets {
			secrets = append(secrets, s.GetName())
		}
		if !slices.Equal(listeners, tc.listeners) || !slices.Equal(secrets, tc.secrets) {
			t.Errorf("%s: listeners %v, secrets %v; want %v, %v", tc.name, listeners, secrets, tc.listeners, tc.secrets)
		}
		if len(out.GRPC.Secrets) > 0 || len(out.GRPC.Listeners) != 1 || out.GRPC.Listeners[0].GetApiListener() == nil {
			t.Errorf("%s: proxyless clients get %d secrets and %v", tc.name, len(out.GRPC.Secrets), out.GRPC.Listeners)
		}
		secure := out.Envoy.Listeners[len(out.Envoy.Listeners)-1]
		if secure.GetAddress().GetSocketAddress().GetPortValue() != lb.TLS.SecurePort {
			t.Errorf("%s: the secure listener is on %v", tc.name, secure.GetAddress())
		}
		var served []string // the secrets the serving chains name, in chain order
		for _, fc := range secure.GetFilterChains() {
			if strings.HasSuffix(fc.GetName(), "_access_list_deny") {
				continue
			}
			ctx := &tlsv3.DownstreamTlsContext{}
			if err := fc.GetTransportSocket().GetTypedConfig().UnmarshalTo(ctx); err != nil {
				t.Fatalf("%s: chain %s: %v", tc.name, fc.GetName(), err)
			}
			c := ctx.GetCommonTlsContext()
			if len(c.GetTlsCertificates()) > 0 || len(c.GetTlsCertificateSdsSecretConfigs()) != 1 || c.GetTlsCertificateSdsSecretConfigs()[0].GetSdsConfig().GetAds() == nil {
				t.Errorf("%s: chain %s does not take exactly one certificate over ADS", tc.name, fc.GetName())
			}
			served = append(served, c.GetTlsCertificateSdsSecretConfigs()[0].GetName())
			if p := c.GetTlsParams(); p.GetTlsMinimumProtocolVersion() != tc.minVersion || p.GetTlsMaximumProtocolVersion() != tlsv3.TlsParameters_TLSv1_3 {
				t.Errorf("%s: versions %v-%v", tc.name, p.GetTlsMinimumProtocolVersion(), p.GetTlsMaximumProtocolVersion())
			}
			if !slices.Equal(c.GetAlpnProtocols(), []string{"h2", "http/1.1"}) {
				t.Errorf("%s: ALPN %v", tc.name, c.GetAlpnProtocols())
			}
		}
		// Mappings first (chosen by SNI), the default last.
		want := append(slices.Clone(tc.secrets[1:]), tc.secrets[0])
		if !slices.Equal(served, want) {
			t.Errorf("%s: chains serve %v, want %v", tc.name, served, want)
		}
	}
}

// With httpsRedirect, the plain port answers a redirect to https on the
// secure port and proxies nothing.
func TestTerminationRedirect(t *testing.T) {
	out, err := Translate(goldenCases["tls_redirect"])
	if err != nil {
		t.Fatal(err)
	}
	plain := out.Envoy.Listeners[0]
	hcm := &hcmv3.HttpConnectionManager{}
	if err := plain.GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(hcm); err != nil {
		t.Fatal(err)
	}
	r := hcm.GetRouteConfig().GetVirtualHosts()[0].GetRoutes()[0].GetRedirect()
	if plain.GetAddress().GetSocketAddress().GetPortValue() != 80 || !r.GetHttpsRedirect() || r.GetPortRedirect() != 443 {
		t.Errorf("plain listener %v redirects %v", plain.GetAddress(), r)
	}
}

// Refused inputs: what the API never stores must not reach a proxy.
func TestTerminationChecks(t *testing.T) {
	for name, mutate := range map[string]func(*LoadBalancer){
		"udp":            func(lb *LoadBalancer) { lb.Protocol = "UDP" },
		"same port":      func(lb *LoadBalancer) { lb.TLS.SecurePort = lb.Port },
		"no key":         func(lb *LoadBalancer) { lb.TLS.Default.PrivateKey = "" },
		"unknown cipher": func(lb *LoadBalancer) { lb.TLS.Ciphers = []string{"SSL_RSA_WITH_RC4_128_MD5"} },
		"only TLS 1.3":   func(lb *LoadBalancer) { lb.TLS.Ciphers = profile(2) },
		"repeated mapping": func(lb *LoadBalancer) {
			lb.TLS.Mappings = []CertificateMapping{{1, "a.example", testCert("a")}, {2, "a.example", testCert("b")}}
		},
		"not UTF-8": func(lb *LoadBalancer) { lb.TLS.Default.Chain = "\xff" },
	} {
		lb := terminated(50, TLSTermination{})
		mutate(lb)
		if _, err := Translate(lb); err == nil {
			t.Errorf("%s: translated", name)
		}
	}
}

// Every filter configuration served over ECDS is named by a chain of a
// listener, and every chain's name is served: nothing published that no
// proxy would ask for, nothing asked for that is not published.
func TestEveryExtensionIsNamed(t *testing.T) {
	for name, lb := range goldenCases {
		out, err := Translate(lb)
		if err != nil {
			t.Fatal(err)
		}
		served, named := map[string]bool{}, map[string]bool{}
		for _, e := range out.Envoy.Extensions {
			served[e.GetName()] = true
		}
		for _, l := range out.Envoy.Listeners {
			for _, fc := range l.GetFilterChains() {
				for _, f := range fc.GetFilters() {
					if f.GetConfigDiscovery() != nil {
						named[f.GetName()] = true
					}
				}
			}
		}
		if fmt.Sprint(served) != fmt.Sprint(named) {
			t.Errorf("%s: served %v, named %v", name, served, named)
		}
	}
}

// The secure listener's proxy configuration counts under lb_<id>_tls.
func TestSecureStatPrefix(t *testing.T) {
	out, err := Translate(goldenCases["tls_http_terminated"])
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range out.Envoy.Extensions {
		hcm := &hcmv3.HttpConnectionManager{}
		if err := e.GetTypedConfig().UnmarshalTo(hcm); err != nil {
			t.Fatal(err)
		}
		want := "lb_40"
		if e.GetName() == SecureProxyFilterName(40, FamilyHTTP) {
			want = SecureStatPrefix(40)
		}
		if hcm.GetStatPrefix() != want {
			t.Errorf("%s: stat prefix %q, want %q", e.GetName(), hcm.GetStatPrefix(), want)
		}
	}
}
