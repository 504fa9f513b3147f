package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
)

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// Envoy's numbers after real traffic, through its metrics service sink
// and its load reports: the bytes of one client connection exactly (what
// the client wrote and read), the connection while it is open, the
// requests; in the statistics, the usage and the history.
func TestEnvoyTrafficNumbers(t *testing.T) {
	a, _ := envoyStack(t, []string{"LBAASD_USAGE_FLUSH_INTERVAL=200ms", "LBAASD_LOAD_REPORT_INTERVAL=1s"},
		"--stats-flush-interval", "1s")
	node, _ := httpBackend(t, "numbers")
	port := freePort(t)
	lb := a.create(fmt.Sprintf(`{"loadBalancer":{"name":"numbers","protocol":"HTTP","port":%d,
		"virtualIps":[{"type":"PUBLIC","ipVersion":"IPV4"}],"nodes":[%s]}}`, port, nodeJSON("127.0.0.1", node, "")))
	a.waitStatus(lb.ID, "ACTIVE") // Envoy acknowledged
	addr := net.JoinHostPort(vipOf(t, a, lb.ID), strconv.Itoa(port))

	var conn net.Conn
	waitFor(t, "Envoy's listener", func() bool {
		c, err := net.Dial("tcp", addr)
		conn = c
		return err == nil
	})
	defer conn.Close()
	in := &countingReader{r: conn}
	br := bufio.NewReader(in)
	sent := 0
	const calls = 5
	for i := range calls {
		n, err := io.WriteString(conn, fmt.Sprintf("GET /%d HTTP/1.1\r\nHost: numbers\r\n\r\n", i))
		if err != nil {
			t.Fatal(err)
		}
		sent += n
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("call %d: %s", i, resp.Status)
		}
	}
	received := in.n - br.Buffered()

	// The connection stays open: one connection, the calls, the bytes.
	var st stats
	waitFor(t, "the statistics of the open connection", func() bool {
		a.do("GET", a.lbPath(lb.ID, "/stats"), "", 200, &st)
		return st.CurrentConn == 1 && st.MaxConn >= 1 && st.Requests == calls
	})
	waitFor(t, fmt.Sprintf("usage and history of %d bytes in, %d out", sent, received), func() bool {
		var cur struct {
			LoadBalancerUsageRecords []struct{ IncomingTransfer, OutgoingTransfer, Requests int }
		}
		a.do("GET", a.lbPath(lb.ID, "/usage/current"), "", 200, &cur)
		var usageIn, usageOut, requests int
		for _, r := range cur.LoadBalancerUsageRecords {
			usageIn, usageOut, requests = usageIn+r.IncomingTransfer, usageOut+r.OutgoingTransfer, requests+r.Requests
		}
		var h struct {
			History struct {
				Points []struct{ IncomingTransfer, OutgoingTransfer int }
			}
		}
		a.do("GET", a.lbPath(lb.ID, "/stats/history"), "", 200, &h)
		var histIn, histOut int
		for _, p := range h.History.Points {
			histIn, histOut = histIn+p.IncomingTransfer, histOut+p.OutgoingTransfer
		}
		return usageIn == sent && usageOut == received && requests == calls && histIn == sent && histOut == received
	})

	conn.Close()
	waitFor(t, "no connection open after the client closed it", func() bool {
		a.do("GET", a.lbPath(lb.ID, "/stats"), "", 200, &st)
		return st.CurrentConn == 0 && st.MaxConn >= 1
	})
}
