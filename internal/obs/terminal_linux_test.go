package obs

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY returns the two ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Skipf("pty number: %v", err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open pty: %v", err)
	}
	t.Cleanup(func() { tty.Close() })
	return master, tty
}

func TestLoggerWritesTextToATerminal(t *testing.T) {
	master, tty := openPTY(t)
	NewLogger(tty, slog.LevelInfo, "dev").With("component", "edge").Info("listening", "addr", "127.0.0.1:8080")
	got := make(chan string, 1)
	go func() {
		b := make([]byte, 4096)
		n, _ := master.Read(b)
		got <- string(b[:n])
	}()
	select {
	case line := <-got:
		if strings.HasPrefix(line, "{") || !strings.Contains(line, "msg=listening") || !strings.Contains(line, "service=dev component=edge") {
			t.Fatalf("terminal line is not slog text: %q", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing written to the terminal")
	}
}
