package deploycheck

import (
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/config/apiconfig"
)

// The two shapes of the stack: the single-node default and the production
// cluster override on top of it.
var (
	singleNode = []string{"compose.yaml"}
	cluster    = []string{"compose.yaml", "compose.cluster.yaml"}
)

// loadProject loads compose files the way `docker compose -f … -f …` does,
// with every profile enabled and an empty environment, so the defaults in the
// files are what is checked, not the developer's shell.
func loadProject(t *testing.T, files ...string) *types.Project {
	t.Helper()
	root := repoRoot(t)
	details := types.ConfigDetails{WorkingDir: root, Environment: types.Mapping{}}
	for _, f := range files {
		details.ConfigFiles = append(details.ConfigFiles, types.ConfigFile{Filename: filepath.Join(root, f)})
	}
	p, err := loader.LoadWithContext(t.Context(), details, func(o *loader.Options) {
		o.SetProjectName("paystream", true)
		o.Profiles = []string{"*"}
		o.ResolvePaths = true
	})
	if err != nil {
		t.Fatalf("load %v: %v", files, err)
	}
	return p
}

// service returns a service of p or fails the test.
func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("service %s: %v", name, err)
	}
	return s
}

// env returns a service's environment as a plain map.
func env(s types.ServiceConfig) map[string]string {
	m := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			m[k] = *v
		}
	}
	return m
}

// oneShot services run to completion (`up` for migrate, `run` for the CLI);
// every other service runs for good and needs a healthcheck.
var oneShot = []string{"migrate", "paystream"}

func TestComposeServices(t *testing.T) {
	for _, files := range [][]string{singleNode, cluster} {
		t.Run(strings.Join(files, "+"), func(t *testing.T) {
			p := loadProject(t, files...)
			want := []string{"nats", "postgres", "migrate", "edge", "processor", "api", "prometheus", "grafana", "paystream"}
			if slices.Equal(files, cluster) {
				want = append(want, "nats-2", "nats-3")
			}
			for _, name := range want {
				if _, err := p.GetService(name); err != nil {
					t.Errorf("service %s: %v", name, err)
				}
			}
			for name, s := range p.Services {
				if slices.Contains(oneShot, name) {
					continue
				}
				hc := s.HealthCheck
				if hc == nil || hc.Disable || len(hc.Test) < 2 || hc.Test[0] == "NONE" {
					t.Errorf("long-running service %s has no healthcheck", name)
				}
				if s.Restart == "" || s.Restart == "no" {
					t.Errorf("long-running service %s has restart %q, want a restart policy", name, s.Restart)
				}
			}
			if s := service(t, p, "migrate"); s.Restart != "no" {
				t.Errorf("migrate restart = %q, want \"no\": it is a one-shot job", s.Restart)
			}
		})
	}
}

// Start-up order: the schema exists before a processor starts, the broker is
// ready before anything publishes, and Grafana finds Prometheus.
func TestComposeDependsOn(t *testing.T) {
	const healthy, completed = types.ServiceConditionHealthy, types.ServiceConditionCompletedSuccessfully
	want := map[string]map[string]string{
		"migrate":    {"postgres": healthy},
		"edge":       {"nats": healthy},
		"processor":  {"nats": healthy, "postgres": healthy, "migrate": completed},
		"api":        {"postgres": healthy, "migrate": completed},
		"paystream":  {"nats": healthy, "postgres": healthy},
		"grafana":    {"prometheus": healthy},
		"prometheus": {"edge": types.ServiceConditionStarted, "processor": types.ServiceConditionStarted, "api": types.ServiceConditionStarted},
	}
	for _, files := range [][]string{singleNode, cluster} {
		t.Run(strings.Join(files, "+"), func(t *testing.T) {
			p := loadProject(t, files...)
			for svc, deps := range want {
				deps := maps(deps)
				if slices.Equal(files, cluster) && (svc == "edge" || svc == "processor" || svc == "paystream") {
					deps["nats-2"], deps["nats-3"] = healthy, healthy
				}
				s := service(t, p, svc)
				for dep, cond := range deps {
					got, ok := s.DependsOn[dep]
					if !ok {
						t.Errorf("%s does not depend on %s", svc, dep)
						continue
					}
					if got.Condition != cond {
						t.Errorf("%s depends on %s with condition %q, want %q", svc, dep, got.Condition, cond)
					}
				}
			}
		})
	}
}

// maps copies a dependency table so a subtest can extend it.
func maps(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Only the webhook listener is public. Everything else that is published
// (admin, Prometheus, Grafana, NATS monitoring) binds to 127.0.0.1, and the
// processor publishes nothing, so `--scale processor=3` cannot clash on a
// host port.
func TestComposePorts(t *testing.T) {
	for _, files := range [][]string{singleNode, cluster} {
		t.Run(strings.Join(files, "+"), func(t *testing.T) {
			p := loadProject(t, files...)
			if ps := service(t, p, "processor").Ports; len(ps) != 0 {
				t.Errorf("processor publishes host ports %+v; it must have none to scale", ps)
			}
			publicWebhook := false
			for name, s := range p.Services {
				for _, port := range s.Ports {
					if name == "edge" && port.Target == 8080 {
						publicWebhook = true
						continue
					}
					if ip := net.ParseIP(port.HostIP); ip == nil || !ip.IsLoopback() {
						t.Errorf("%s publishes container port %d on %q; only the edge's webhook port may be public",
							name, port.Target, port.HostIP)
					}
				}
			}
			if !publicWebhook {
				t.Error("the edge does not publish its webhook port 8080")
			}
		})
	}
}

// Every file the stack mounts or builds from exists, and every build target
// is a stage of the Dockerfile.
func TestComposeReferencedFilesExist(t *testing.T) {
	for _, files := range [][]string{singleNode, cluster} {
		t.Run(strings.Join(files, "+"), func(t *testing.T) {
			p := loadProject(t, files...)
			for name, s := range p.Services {
				for _, v := range s.Volumes {
					if v.Type != types.VolumeTypeBind {
						if _, ok := p.Volumes[v.Source]; !ok {
							t.Errorf("%s mounts volume %q, which is not declared", name, v.Source)
						}
						continue
					}
					if _, err := os.Stat(v.Source); err != nil {
						t.Errorf("%s mounts %s: %v", name, v.Source, err)
					}
					if !v.ReadOnly {
						t.Errorf("%s mounts %s writable; configuration mounts are read-only", name, v.Source)
					}
				}
				if s.Build == nil {
					if s.Image == "" {
						t.Errorf("%s has neither image nor build", name)
					}
					continue
				}
				dockerfile := s.Build.Dockerfile
				if dockerfile == "" {
					dockerfile = "Dockerfile"
				}
				if !filepath.IsAbs(dockerfile) {
					dockerfile = filepath.Join(s.Build.Context, dockerfile)
				}
				src, err := os.ReadFile(dockerfile)
				if err != nil {
					t.Errorf("%s builds from %s: %v", name, dockerfile, err)
					continue
				}
				var stages []string
				for _, st := range parseDockerfile(string(src)) {
					stages = append(stages, st.name)
				}
				if !slices.Contains(stages, s.Build.Target) {
					t.Errorf("%s builds target %q; %s has stages %v", name, s.Build.Target, dockerfile, stages)
				}
			}
		})
	}
}

// The app images are distroless: a healthcheck must be exec form (no shell)
// and probe the admin port the service listens on.
func TestComposeAppHealthchecks(t *testing.T) {
	p := loadProject(t, singleNode...)
	for _, name := range []string{"edge", "processor", "api"} {
		s := service(t, p, name)
		hc := s.HealthCheck
		if hc == nil || len(hc.Test) < 2 {
			t.Errorf("%s has no healthcheck", name)
			continue
		}
		if hc.Interval == nil || hc.Timeout == nil || hc.StartPeriod == nil {
			t.Errorf("%s healthcheck lost its timings (the x-app-healthcheck merge): %+v", name, hc)
		}
		if hc.Test[0] != "CMD" {
			t.Errorf("%s healthcheck %v: want exec form [\"CMD\", …], the image has no shell", name, hc.Test)
		}
		_, port, err := net.SplitHostPort(env(s)["ADMIN_ADDR"])
		if err != nil {
			t.Errorf("%s ADMIN_ADDR %q: %v", name, env(s)["ADMIN_ADDR"], err)
			continue
		}
		probe := strings.Join(hc.Test, " ")
		if !strings.Contains(probe, "127.0.0.1:"+port+"/readyz") {
			t.Errorf("%s healthcheck %q does not probe its admin port %s /readyz", name, probe, port)
		}
	}
}

// The environment the stack hands the app is accepted by the app's own
// parser; the cluster shape runs R3 streams against all three brokers.
func TestComposeAppEnvironment(t *testing.T) {
	for _, files := range [][]string{singleNode, cluster} {
		t.Run(strings.Join(files, "+"), func(t *testing.T) {
			p := loadProject(t, files...)
			for _, name := range []string{"migrate", "edge", "processor", "paystream"} {
				e := env(service(t, p, name))
				parser := config.NewParser(config.MapEnv(e))
				c := config.ParseCommon(parser)
				if err := parser.Err(); err != nil {
					t.Errorf("%s: environment rejected: %v", name, err)
					continue
				}
				u, err := url.Parse(c.DatabaseURL)
				if err != nil || u.Hostname() != "postgres" {
					t.Errorf("%s DATABASE_URL %q does not point at the postgres service", name, c.DatabaseURL)
				}
				if name == "migrate" {
					continue // it only talks to Postgres
				}
				wantReplicas, wantServers := 1, 1
				if slices.Equal(files, cluster) {
					wantReplicas, wantServers = 3, 3
				}
				if c.Streams.Replicas != wantReplicas {
					t.Errorf("%s STREAM_REPLICAS = %d, want %d", name, c.Streams.Replicas, wantReplicas)
				}
				if got := len(strings.Split(c.NATSURL, ",")); got != wantServers {
					t.Errorf("%s NATS_URL %q lists %d servers, want %d", name, c.NATSURL, got, wantServers)
				}
			}
			if _, err := apiconfig.Parse(config.MapEnv(env(service(t, p, "api")))); err != nil {
				t.Errorf("api: environment rejected: %v", err)
			}
			edge := env(service(t, p, "edge"))
			if !strings.HasPrefix(edge["STRIPE_WEBHOOK_SECRET"], "whsec_") {
				t.Errorf("edge STRIPE_WEBHOOK_SECRET = %q, want a whsec_ dev default", edge["STRIPE_WEBHOOK_SECRET"])
			}
		})
	}
}

// A secret from the environment (or .env) replaces the dev default.
func TestComposeSecretFromEnvironment(t *testing.T) {
	root := repoRoot(t)
	const secret = "whsec_live_one,whsec_live_two"
	p, err := loader.LoadWithContext(t.Context(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "compose.yaml")}},
		Environment: types.Mapping{"STRIPE_WEBHOOK_SECRET": secret, "STREAM_REPLICAS": "3"},
	}, func(o *loader.Options) { o.SetProjectName("paystream", true) })
	if err != nil {
		t.Fatal(err)
	}
	e := env(service(t, p, "edge"))
	if e["STRIPE_WEBHOOK_SECRET"] != secret || e["STREAM_REPLICAS"] != "3" {
		t.Errorf("edge environment %v does not take STRIPE_WEBHOOK_SECRET and STREAM_REPLICAS from the environment", e)
	}
}

// Each NATS node of a shape runs the config written for it, under a unique
// server name, on its own data volume: two nodes sharing a store would
// corrupt it, and Raft tells peers apart by server name.
func TestComposeNATSNodes(t *testing.T) {
	tests := []struct {
		name   string
		files  []string
		nodes  []string
		config string
	}{
		{"single node", singleNode, []string{"nats"}, "deploy/nats/nats.conf"},
		{"cluster", cluster, []string{"nats", "nats-2", "nats-3"}, "deploy/nats/cluster.conf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := loadProject(t, tt.files...)
			wantConfig := filepath.Join(repoRoot(t), filepath.FromSlash(tt.config))
			names, stores := map[string]string{}, map[string]string{}
			for _, node := range tt.nodes {
				s := service(t, p, node)
				i := slices.Index(s.Command, "--config")
				if i < 0 || i+1 >= len(s.Command) {
					t.Errorf("%s command %v has no --config", node, s.Command)
					continue
				}
				configPath := s.Command[i+1]
				var source, store string
				for _, v := range s.Volumes {
					switch {
					case v.Target == configPath:
						source = v.Source
					case v.Target == "/data":
						store = v.Source
					}
				}
				if source != wantConfig {
					t.Errorf("%s runs %s from %q, want %s", node, configPath, source, tt.config)
				}
				if store == "" {
					t.Errorf("%s has no volume at /data (the JetStream store_dir)", node)
				} else if other, dup := stores[store]; dup {
					t.Errorf("%s and %s share the data volume %s", node, other, store)
				}
				stores[store] = node
				if len(tt.nodes) > 1 {
					sn := env(s)["SERVER_NAME"]
					if other, dup := names[sn]; sn == "" || dup {
						t.Errorf("%s SERVER_NAME %q is empty or also used by %s", node, sn, other)
					}
					names[sn] = node
				}
			}
		})
	}
}
