package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// Kinds of process the soak runs.
const (
	kindEdge = iota
	kindProcessor
	kindBroker
)

// process is one binary started by the soak: the edge, a processor or the
// broker.
type process struct {
	name, bin, logDir string
	kind              int
	env               map[string]string
	args              []string // the broker's flags
	secret            string   // the edge's signing secret

	cmd       *exec.Cmd
	waited    chan struct{}
	addr      string // EDGE_ADDR (edge only)
	adminAddr string // paystream's ADMIN_ADDR; the broker's monitoring port
	profAddr  string // the broker's profiling port (goroutines)
	starts    int
}

func (p *process) pid() int {
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// start runs the binary on fresh loopback ports and waits for /readyz.
func (p *process) start(ctx context.Context) error {
	admin, err := freePort()
	if err != nil {
		return err
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"ADMIN_ADDR=127.0.0.1:" + strconv.Itoa(admin)}
	p.adminAddr = "127.0.0.1:" + strconv.Itoa(admin)
	args := p.args
	readyURL := "http://" + p.adminAddr + "/readyz"
	if p.kind == kindBroker {
		prof, err := freePort()
		if err != nil {
			return err
		}
		p.profAddr = "127.0.0.1:" + strconv.Itoa(prof)
		args = append(slices.Clone(args), "-m", strconv.Itoa(admin), "--profile", strconv.Itoa(prof))
		readyURL = "http://" + p.adminAddr + "/healthz?js-enabled-only=true"
	}
	if p.kind == kindEdge {
		pub, err := freePort()
		if err != nil {
			return err
		}
		p.addr = "127.0.0.1:" + strconv.Itoa(pub)
		env = append(env, "EDGE_ADDR="+p.addr)
	}
	for k, v := range p.env {
		env = append(env, k+"="+v)
	}
	logf, err := os.OpenFile(filepath.Join(p.logDir, p.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	// The processes die with the soak, whatever happens to it.
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("soak: start %s: %w", p.name, err)
	}
	p.cmd, p.waited = cmd, make(chan struct{})
	p.starts++
	go func() { _ = cmd.Wait(); logf.Close(); close(p.waited) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if ready(ctx, readyURL) {
			return nil
		}
		select {
		case <-p.waited:
			return fmt.Errorf("soak: %s exited during start-up; see %s", p.name, logf.Name())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("soak: %s not ready after 60s; see %s", p.name, logf.Name())
		}
	}
}

func ready(ctx context.Context, target string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// kill SIGKILLs the process and reaps it.
func (p *process) kill() error {
	if p.cmd == nil {
		return errors.New("not running")
	}
	if err := p.cmd.Process.Kill(); err != nil {
		return err
	}
	<-p.waited
	return nil
}

// stop asks the process to shut down (SIGTERM) and kills it after 15s.
func (p *process) stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.waited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.waited:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.waited
	}
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
