package testenv

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Cluster is a three-node JetStream cluster of embedded nats-servers on
// loopback, each node with its own store in a temp dir, so a test can kill
// and restart single nodes (the production shape of compose.cluster.yaml).
type Cluster struct {
	tb    testing.TB
	Nodes []*NATS
}

// freePorts reserves n loopback ports and releases them for the servers.
func freePorts(tb testing.TB, n int) []int {
	tb.Helper()
	ports := make([]int, n)
	ls := make([]net.Listener, n)
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		ls[i], ports[i] = l, l.Addr().(*net.TCPAddr).Port
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return ports
}

// StartCluster starts three clustered JetStream servers named n1..n3 and
// waits until they elected a meta leader. They are shut down at cleanup.
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	const size = 3
	ports := freePorts(tb, 2*size)
	routes := make([]*url.URL, size)
	for i := range size {
		routes[i] = &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", ports[size+i])}
	}
	c := &Cluster{tb: tb}
	for i := range size {
		n := &NATS{tb: tb, opts: server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       ports[i],
			JetStream:  true,
			StoreDir:   tb.TempDir(),
			NoLog:      true,
			NoSigs:     true,
			Cluster: server.ClusterOpts{
				Name: "paystream-test",
				Host: "127.0.0.1",
				Port: ports[size+i],
			},
			Routes: routes,
		}}
		c.Nodes = append(c.Nodes, n)
	}
	// Start them concurrently: each waits for its routes.
	errs := make(chan error, size)
	for _, n := range c.Nodes {
		go func() {
			srv, err := server.NewServer(&n.opts)
			if err != nil {
				errs <- err
				return
			}
			go srv.Start()
			if !srv.ReadyForConnections(20 * time.Second) {
				errs <- fmt.Errorf("%s not ready", n.opts.ServerName)
				return
			}
			n.srv = srv
			errs <- nil
		}()
	}
	for range size {
		if err := <-errs; err != nil {
			tb.Fatalf("cluster: %v", err)
		}
	}
	tb.Cleanup(func() {
		for _, n := range c.Nodes {
			n.Shutdown()
		}
	})
	c.WaitHealthy(30 * time.Second)
	return c
}

// URLs is the client URL list of every node, comma-separated, as NATS_URL
// holds it in the cluster deployment.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		urls[i] = fmt.Sprintf("nats://127.0.0.1:%d", n.opts.Port)
	}
	return strings.Join(urls, ",")
}

// Node returns the node named name (n1..n3), or nil.
func (c *Cluster) Node(name string) *NATS {
	for _, n := range c.Nodes {
		if n.opts.ServerName == name {
			return n
		}
	}
	return nil
}

// WaitHealthy waits until every running node reports itself healthy (a
// JetStream meta leader known, its streams and consumers current).
func (c *Cluster) WaitHealthy(within time.Duration) {
	c.tb.Helper()
	deadline := time.Now().Add(within)
	for {
		ok := true
		for _, n := range c.Nodes {
			if n.srv == nil || !n.srv.Running() {
				continue
			}
			if st := n.srv.Healthz(nil); st != nil && st.Error != "" {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.tb.Fatalf("cluster not healthy after %s", within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
