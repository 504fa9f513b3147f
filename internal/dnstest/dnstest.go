// Package dnstest serves a small DNS zone on loopback for tests, with
// github.com/miekg/dns, and gives a Go resolver that asks only it. Tests of
// node names then use a real DNS exchange and never reach the machine's own
// DNS server (nothing leaves 127.0.0.1).
//
// The resolver is Go's own (PreferGo), so the hosts file still answers
// first for the names it lists, as on a production machine.
package dnstest

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Server is a DNS server on 127.0.0.1 answering A and AAAA queries from
// its records; other names get NXDOMAIN.
type Server struct {
	// Addr is the server's UDP address.
	Addr string

	mu      sync.Mutex
	records map[string][]netip.Addr // by fully qualified lower-case name
	queries map[string]int
}

// Start serves records (name -> addresses) until the test ends.
func Start(t testing.TB, records map[string][]string) *Server {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("dnstest: listen: %v", err)
	}
	s := &Server{Addr: pc.LocalAddr().String(), records: map[string][]netip.Addr{}, queries: map[string]int{}}
	for name, addrs := range records {
		s.Set(name, addrs...)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serve), NotifyStartedFunc: func() { close(started) }}
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return s
}

// Set replaces what name resolves to; no address at all makes it exist
// with no records (NOERROR, empty answer).
func (s *Server) Set(name string, addrs ...string) {
	var ips []netip.Addr
	for _, a := range addrs {
		ips = append(ips, netip.MustParseAddr(a))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[dns.Fqdn(strings.ToLower(name))] = ips
}

// Queries counts the questions asked about name.
func (s *Server) Queries(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[dns.Fqdn(strings.ToLower(name))]
}

func (s *Server) serve(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	s.mu.Lock()
	for _, q := range req.Question {
		name := strings.ToLower(q.Name)
		s.queries[name]++
		ips, ok := s.records[name]
		if !ok {
			m.Rcode = dns.RcodeNameError
			continue
		}
		hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: 1}
		for _, ip := range ips {
			switch {
			case q.Qtype == dns.TypeA && ip.Is4():
				hdr.Rrtype = dns.TypeA
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: ip.AsSlice()})
			case q.Qtype == dns.TypeAAAA && ip.Is6():
				hdr.Rrtype = dns.TypeAAAA
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: ip.AsSlice()})
			}
		}
	}
	s.mu.Unlock()
	_ = w.WriteMsg(m)
}

// Resolver is Go's resolver asking only this server (after the hosts
// file).
func (s *Server) Resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", s.Addr)
	}}
}
