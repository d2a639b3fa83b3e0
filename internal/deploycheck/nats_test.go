package deploycheck

import (
	"path/filepath"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// The NATS configs are parsed by nats-server itself (the version the tests
// embed): an unknown key or a typo fails here, not at `docker compose up`.
func TestNATSConfigs(t *testing.T) {
	tests := []struct {
		name        string
		file        string
		serverName  string
		wantCluster bool
	}{
		{"single node", "deploy/nats/nats.conf", "nats-1", false},
		{"cluster node", "deploy/nats/cluster.conf", "nats-2", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("SERVER_NAME", tt.serverName)
			opts, err := server.ProcessConfigFile(filepath.Join(repoRoot(t), tt.file))
			if err != nil {
				t.Fatalf("nats-server rejects %s: %v", tt.file, err)
			}
			if !opts.JetStream {
				t.Error("JetStream is not enabled")
			}
			// The point of the file: fsync before every PubAck (see the comment
			// in it and docs/deploy.md).
			if !opts.SyncAlways {
				t.Error("jetstream sync_interval is not `always`")
			}
			if opts.StoreDir != "/data/jetstream" {
				t.Errorf("store_dir = %q, want /data/jetstream (the mounted volume)", opts.StoreDir)
			}
			if opts.ServerName != tt.serverName {
				t.Errorf("server_name = %q, want %q", opts.ServerName, tt.serverName)
			}
			if opts.HTTPPort != 8222 {
				t.Errorf("http_port = %d, want 8222 (the healthcheck probes it)", opts.HTTPPort)
			}
			if tt.wantCluster {
				if opts.Cluster.Name == "" || len(opts.Routes) != 3 {
					t.Errorf("cluster %q with %d routes, want a named cluster with 3 routes", opts.Cluster.Name, len(opts.Routes))
				}
			}
		})
	}
}
