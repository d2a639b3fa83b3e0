package httpserver

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const (
	secret      = "whsec_bench"
	concurrency = 16
	serveEnv    = "HTTPSERVER_BENCH_SERVE" // set: this process is a server child
)

// TestMain turns the test binary into a server when serveEnv names one. The
// child prints its address, then answers each "cpu" line on stdin with its
// own CPU time (user + system, microseconds) and exits when stdin closes.
func TestMain(m *testing.M) {
	kind := os.Getenv(serveEnv)
	if kind == "" {
		os.Exit(m.Run())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	v := &verifier{key: []byte(secret)}
	switch kind {
	case "nethttp":
		go func() { _ = serveNetHTTP(ln, v) }()
	case "fasthttp":
		go func() { _ = serveFastHTTP(ln, v) }()
	default:
		fmt.Fprintln(os.Stderr, "unknown server", kind)
		os.Exit(2)
	}
	fmt.Println(ln.Addr())
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		fmt.Println(cpuMicros(syscall.RUSAGE_SELF))
	}
	os.Exit(0)
}

// cpuMicros is the user + system CPU time of who, in microseconds.
func cpuMicros(who int) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		panic(err)
	}
	return ru.Utime.Nano()/1e3 + ru.Stime.Nano()/1e3
}

// child is a server process.
type child struct {
	addr string
	in   io.WriteCloser
	out  *bufio.Reader
	cmd  *exec.Cmd
}

func startChild(tb testing.TB, kind string) *child {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serveEnv+"="+kind)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	outp, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	c := &child{in: in, out: bufio.NewReader(outp), cmd: cmd}
	tb.Cleanup(func() { _ = in.Close(); _ = cmd.Wait() })
	c.addr = c.line(tb)
	return c
}

func (c *child) line(tb testing.TB) string {
	tb.Helper()
	s, err := c.out.ReadString('\n')
	if err != nil {
		tb.Fatal(err)
	}
	return strings.TrimSpace(s)
}

// cpu asks the child for its CPU time so far, in microseconds.
func (c *child) cpu(tb testing.TB) int64 {
	tb.Helper()
	if _, err := io.WriteString(c.in, "cpu\n"); err != nil {
		tb.Fatal(err)
	}
	n, err := strconv.ParseInt(c.line(tb), 10, 64)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// webhookRequest is one raw HTTP/1.1 request as Stripe sends it: a 2.3 KB
// checkout event, signed.
func webhookRequest() []byte {
	var body bytes.Buffer
	body.WriteString(`{"id":"evt_1Pq2Rs3Tu4Vw5Xy6Za7Bc8De","object":"event","api_version":"2024-06-20","created":1700000000,"data":{"object":{"id":"cs_test_a1b2c3","object":"checkout.session","amount_total":2999,"currency":"usd","customer_details":{"email":"buyer@example.com","name":"A Buyer"},"metadata":{"userId":"user_1","contentId":"c0ffee00-0000-4000-8000-000000000001"},"payment_status":"paid","status":"complete","line_items":[`)
	for i := 0; body.Len() < 2250; i++ {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"id":"li_%04d","object":"item","amount_total":2999,"description":"Item %d","quantity":1}`, i, i)
	}
	body.WriteString(`]}},"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"checkout.session.completed"}`)
	ts := "1700000000"
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body.Bytes())
	sig := "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
	var req bytes.Buffer
	fmt.Fprintf(&req, "POST /webhooks/stripe HTTP/1.1\r\nHost: edge.test\r\nUser-Agent: Stripe/1.0 (+https://stripe.com/docs/webhooks)\r\n"+
		"Accept: */*; q=0.5, application/xml\r\nCache-Control: no-cache\r\nContent-Type: application/json; charset=utf-8\r\n"+
		"Stripe-Signature: %s\r\nContent-Length: %d\r\n\r\n", sig, body.Len())
	req.Write(body.Bytes())
	return req.Bytes()
}

// conn is a keep-alive client connection that sends raw requests and reads
// just enough of each response to find its end: the same small client cost
// for both servers.
type conn struct {
	c net.Conn
	r *bufio.Reader
}

func (c *conn) roundTrip(req []byte) error {
	if _, err := c.c.Write(req); err != nil {
		return err
	}
	status, err := c.r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 200 ")) {
		return fmt.Errorf("status line %q", status)
	}
	length := -1
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			length, err = strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil {
				return err
			}
		}
	}
	if length < 0 {
		return fmt.Errorf("response without Content-Length")
	}
	_, err = c.r.Discard(length)
	return err
}

// BenchmarkServer sends b.N webhooks over 16 keep-alive connections to a
// server child and reports the child's CPU per request (server-µs/req), the
// rate (req/s) and this process's (the client's) CPU per request.
func BenchmarkServer(b *testing.B) {
	req := webhookRequest()
	for _, kind := range []string{"nethttp", "fasthttp"} {
		b.Run(kind, func(b *testing.B) {
			srv := startChild(b, kind)
			conns := make([]*conn, concurrency)
			for i := range conns {
				c, err := net.Dial("tcp", srv.addr)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				conns[i] = &conn{c: c, r: bufio.NewReaderSize(c, 4<<10)}
				for range 200 { // warm up: connections, pools, the child's heap
					if err := conns[i].roundTrip(req); err != nil {
						b.Fatal(err)
					}
				}
			}
			var next atomic.Int64
			serverCPU0, clientCPU0 := srv.cpu(b), cpuMicros(syscall.RUSAGE_SELF)
			start := time.Now()
			b.ResetTimer()
			var wg sync.WaitGroup
			for _, c := range conns {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if err := c.roundTrip(req); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			elapsed := time.Since(start)
			serverCPU, clientCPU := srv.cpu(b)-serverCPU0, cpuMicros(syscall.RUSAGE_SELF)-clientCPU0
			b.ReportMetric(float64(serverCPU)/float64(b.N), "server-µs/req")
			b.ReportMetric(float64(clientCPU)/float64(b.N), "client-µs/req")
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
		})
	}
}

// TestBothServersVerify: both answer 200 to the signed request and refuse a
// tampered one, so the benchmark compares servers doing the same work.
func TestBothServersVerify(t *testing.T) {
	req := webhookRequest()
	bad := bytes.Replace(req, []byte(`"amount_total":2999`), []byte(`"amount_total":1999`), 1)
	for _, kind := range []string{"nethttp", "fasthttp"} {
		t.Run(kind, func(t *testing.T) {
			srv := startChild(t, kind)
			c, err := net.Dial("tcp", srv.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			cc := &conn{c: c, r: bufio.NewReader(c)}
			for range 3 {
				if err := cc.roundTrip(req); err != nil {
					t.Fatal(err)
				}
			}
			if err := cc.roundTrip(bad); err == nil || !strings.Contains(err.Error(), "401") {
				t.Fatalf("tampered request: %v, want a 401", err)
			}
		})
	}
}
