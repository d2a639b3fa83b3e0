package loadgen

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
)

// BuildBinaries builds each of c's EdgeBin, ProcessorBin and BrokerBin that
// is empty into dir with the go tool and sets it. It must run inside the
// repository, whose go.mod pins the nats-server version; progress gets one
// line per build.
func (c *SoakConfig) BuildBinaries(ctx context.Context, dir string, progress io.Writer) error {
	for _, b := range []struct {
		path      *string
		name, pkg string
	}{
		{&c.EdgeBin, "edge", "github.com/paystream/paystream/cmd/edge"},
		{&c.ProcessorBin, "processor", "github.com/paystream/paystream/cmd/processor"},
		{&c.BrokerBin, "broker", "github.com/nats-io/nats-server/v2"},
	} {
		if *b.path != "" {
			continue
		}
		out := filepath.Join(dir, b.name)
		fmt.Fprintf(orDiscard(progress), "bench soak: go build %s\n", b.pkg)
		if msg, err := exec.CommandContext(ctx, "go", "build", "-o", out, b.pkg).CombinedOutput(); err != nil {
			return fmt.Errorf("soak: go build %s (run it inside the repository): %w: %s", b.pkg, err, msg)
		}
		*b.path = out
	}
	return nil
}
