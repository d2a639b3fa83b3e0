package deploycheck

import (
	"net"
	"strconv"
	"testing"

	"go.yaml.in/yaml/v4"
)

// Prometheus must scrape each app on the admin port the compose stack gives
// it, through a DNS name that is a compose service (so scaled replicas are all
// found), and load the rule file the stack mounts next to it.
func TestPrometheusScrapesTheStack(t *testing.T) {
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName      string `yaml:"job_name"`
			DNSSDConfigs []struct {
				Names []string `yaml:"names"`
				Type  string   `yaml:"type"`
				Port  int      `yaml:"port"`
			} `yaml:"dns_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	const path = "deploy/prometheus/prometheus.yml"
	if err := yaml.Unmarshal(readRepoFile(t, path), &cfg); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	p := loadProject(t, singleNode...)
	prom := service(t, p, "prometheus")
	mounted := map[string]bool{}
	for _, v := range prom.Volumes {
		mounted[v.Target] = true
	}
	for _, rf := range cfg.RuleFiles {
		if !mounted["/etc/prometheus/"+rf] {
			t.Errorf("rule file %s is not mounted into /etc/prometheus/", rf)
		}
	}
	jobs := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		for _, sd := range sc.DNSSDConfigs {
			if sd.Type != "A" {
				t.Errorf("job %s: dns_sd type %q, want A (Docker's DNS answers A records)", sc.JobName, sd.Type)
			}
			for _, name := range sd.Names {
				s, err := p.GetService(name)
				if err != nil {
					t.Errorf("job %s discovers %q, which is not a compose service", sc.JobName, name)
					continue
				}
				_, port, err := net.SplitHostPort(env(s)["ADMIN_ADDR"])
				if err != nil || port != strconv.Itoa(sd.Port) {
					t.Errorf("job %s scrapes %s on port %d, its ADMIN_ADDR is %q", sc.JobName, name, sd.Port, env(s)["ADMIN_ADDR"])
				}
				jobs[sc.JobName] = true
			}
		}
	}
	// The alert rules select these job names.
	for _, job := range []string{"edge", "processor", "api"} {
		if !jobs[job] {
			t.Errorf("no scrape job %q discovering a compose service", job)
		}
	}
}
