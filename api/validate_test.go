package api

import (
	"strings"
	"testing"
	"time"
)

func TestSharePort(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"TCP", "UDP", true},
		{"TCP_CLIENT_FIRST", "UDP_STREAM", true},
		{"UDP", "TCP_CLIENT_FIRST", true},
		{"DNS_TCP", "DNS_UDP", true},
		{"TCP", "TCP_CLIENT_FIRST", false},
		{"UDP", "UDP_STREAM", false},
		{"DNS_TCP", "UDP", false},
		{"TCP", "DNS_UDP", false},
		{"HTTP", "HTTPS", false},
		{"HTTP", "HTTP", false},
	} {
		if got := sharePort(c.a, c.b); got != c.want {
			t.Errorf("sharePort(%s, %s) = %v, want %v", c.a, c.b, got, c.want)
		}
		if got := sharePort(c.b, c.a); got != c.want {
			t.Errorf("sharePort(%s, %s) = %v, want %v (symmetry)", c.b, c.a, got, c.want)
		}
	}
}

func TestParseTime(t *testing.T) {
	want := time.Date(2011, 5, 19, 13, 7, 8, 0, time.UTC)
	for _, s := range []string{"2011-05-19T08:07:08-0500", "2011-05-19T08:07:08-05:00", "2011-05-19T13:07:08Z"} {
		got, err := ParseTime(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "yesterday", "2011-13-01T00:00:00Z"} {
		if _, err := ParseTime(s); err == nil {
			t.Errorf("ParseTime(%q) accepted", s)
		}
	}
}

func TestNodeAddresses(t *testing.T) {
	for in, want := range map[string]string{
		"10.1.1.1":                "10.1.1.1",
		"2001:DB8::1":             "2001:0db8:0000:0000:0000:0000:0000:0001",
		"www.MyRackspace.com":     "www.myrackspace.com",
		"localhost":               "localhost",
		"node-1.internal.example": "node-1.internal.example",
	} {
		var v validation
		if got := validNodeAddress(&v, "address", in); got != want || len(v) != 0 {
			t.Errorf("validNodeAddress(%q) = %q %v, want %q", in, got, v, want)
		}
	}
	for _, in := range []string{"", "10.1.1.300", "0.0.0.0", "224.0.0.1", "fe80::1%eth0", "-bad.example", "a..b", "1.2.3", "http://x"} {
		var v validation
		validNodeAddress(&v, "address", in)
		if len(v) != 1 {
			t.Errorf("validNodeAddress(%q) accepted (%v)", in, v)
		}
	}
	// Spellings C resolvers (inet_aton) and the URL standard read as IPv4
	// addresses: refused at parse time, whatever they would mean.
	for _, in := range []string{"0x7f000001", "0X7F000001", "0x7f.0.0.1", "0x7f.1", "0177.0.0.1", "0177.1", "127.1", "127.0.1",
		"2130706433", "017700000001", "10.1.1.0x1", "www.0x10", "host.123", "0x7f000001.", "0x"} {
		var v validation
		validNodeAddress(&v, "nodes[0].address", in)
		if len(v) != 1 || !strings.Contains(v[0], "nodes[0].address: ") || !strings.Contains(v[0], "is not a valid IP address") {
			t.Errorf("validNodeAddress(%q): %v", in, v)
		}
	}
	for _, in := range []string{"0x7f.example.com", "123.example.com", "web1.example.org."} {
		var v validation
		if validNodeAddress(&v, "address", in); len(v) != 0 {
			t.Errorf("validNodeAddress(%q) refused: %v", in, v)
		}
	}
}

func TestParseNetwork(t *testing.T) {
	for in, want := range map[string]string{
		"206.160.163.21": "206.160.163.21",
		"10.0.0.7/8":     "10.0.0.0/8",
		"0.0.0.0/0":      "0.0.0.0/0",
		"2001:db8::/32":  "2001:db8::/32",
		"::1":            "::1",
	} {
		if got, err := parseNetwork(in); err != nil || got != want {
			t.Errorf("parseNetwork(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1.2.3.4/33", "10.0.0.0/", "host.example", "fe80::1%eth0"} {
		if _, err := parseNetwork(in); err == nil {
			t.Errorf("parseNetwork(%q) accepted", in)
		}
	}
}
