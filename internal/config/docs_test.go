package config_test

import (
	"bufio"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/config/apiconfig"
	"github.com/paystream/paystream/internal/config/processorconfig"
)

// row is one line of a configuration table: a variable and its documented
// default (the first `code` span of the default column; "" when none).
type row struct{ name, def, scope string }

var (
	varCell  = regexp.MustCompile("^`([A-Z][A-Z0-9_]*(?:<NAME>)?)`$")
	codeSpan = regexp.MustCompile("`([^`]*)`")
)

// configTable reads the table under "## Configuration" in path.
func configTable(t *testing.T, path string) []row {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []row
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			in = line == "## Configuration"
			continue
		case !in || !strings.HasPrefix(line, "| `"):
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) < 3 {
			continue
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		def := ""
		if m := codeSpan.FindStringSubmatch(cells[1]); m != nil {
			def = m[1]
		}
		for _, v := range strings.Split(cells[0], ", ") {
			if m := varCell.FindStringSubmatch(v); m != nil {
				rows = append(rows, row{name: m[1], def: def, scope: cells[2]})
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// parsed is what every service parser makes of an environment.
type parsed struct {
	Edge      config.Edge
	Processor processorconfig.Config
	API       apiconfig.Config
}

// secret makes the edge parse: it refuses to start without an endpoint.
const secret = "whsec_docs_test"

// apiRequired are the variables without which the purchase API refuses to
// start; parseAll sets them when env does not.
var apiRequired = map[string]string{"API_KEYS": "docs_test_key_0123456789", "STRIPE_SECRET_KEY": "sk_test_docs"}

// parseAll runs every parser the services use over env and records the
// variables they look up.
func parseAll(t *testing.T, env map[string]string) (parsed, map[string]bool) {
	t.Helper()
	read := map[string]bool{}
	getenv := func(k string) string { read[k] = true; return env[k] }
	var out parsed
	var err error
	environ := []string{config.SecretVar}
	if out.Edge, err = config.ParseEdge(getenv, environ); err != nil {
		t.Fatalf("edge: %v", err)
	}
	if out.Processor, err = processorconfig.Parse(getenv); err != nil {
		t.Fatalf("processor: %v", err)
	}
	apiEnv := func(k string) string {
		if v, ok := apiRequired[k]; ok && env[k] == "" {
			read[k] = true
			return v
		}
		return getenv(k)
	}
	if out.API, err = apiconfig.Parse(apiEnv); err != nil {
		t.Fatalf("api: %v", err)
	}
	return out, read
}

// The README's configuration table lists exactly the variables the parsers
// read, and each default it gives is the parser's: setting a variable to its
// documented default changes nothing.
func TestREADMEConfigurationTableMatchesTheParsers(t *testing.T) {
	rows := configTable(t, "../../README.md")
	if len(rows) < 20 {
		t.Fatalf("found %d rows in the README's configuration table; did its heading move?", len(rows))
	}
	base, read := parseAll(t, map[string]string{config.SecretVar: secret})
	documented := map[string]bool{}
	for _, r := range rows {
		documented[r.name] = true
	}
	for name := range read {
		if !documented[name] {
			t.Errorf("the parsers read %s but the README's configuration table does not list it", name)
		}
	}
	for _, r := range rows {
		switch {
		case r.scope == "tests" || r.scope == "compose only":
			continue // read by the test helpers and compose, not by a service
		case strings.HasPrefix(r.scope, "OpenTelemetry SDK"):
			continue // read from the process environment by obs.SetupTracing and the SDK
		case r.name == config.SecretVar+"_<NAME>":
			continue // discovered from the environment's names
		case !read[r.name]:
			t.Errorf("the README documents %s (%s) but no service parser reads it", r.name, r.scope)
			continue
		}
		if r.def == "" || strings.ToUpper(r.def) == r.def && strings.Contains(r.def, "_") {
			continue // no literal default (—, another variable, see docs)
		}
		if r.name == "ADMIN_ADDR" {
			continue // two defaults, checked below
		}
		got, _ := parseAll(t, map[string]string{config.SecretVar: secret, r.name: r.def})
		if !reflect.DeepEqual(got, base) {
			t.Errorf("README: %s default %q is not the parser's default", r.name, r.def)
		}
	}
	if base.Edge.AdminAddr != ":9090" || base.Processor.AdminAddr != ":9091" || base.API.AdminAddr != ":9092" {
		t.Errorf("ADMIN_ADDR defaults = %s (edge), %s (processor), %s (api); the README says :9090, :9091 and :9092",
			base.Edge.AdminAddr, base.Processor.AdminAddr, base.API.AdminAddr)
	}
}

// docs/edge.md repeats the edge's variables; the defaults it gives must be the
// README's.
func TestDocsAgreeWithTheREADME(t *testing.T) {
	readme := map[string]string{}
	for _, r := range configTable(t, "../../README.md") {
		readme[r.name] = r.def
	}
	for _, path := range []string{"../../docs/edge.md"} {
		for _, r := range configTable(t, path) {
			if r.name == "ADMIN_ADDR" {
				continue // the edge's of the two
			}
			def, ok := readme[r.name]
			if !ok {
				t.Errorf("%s documents %s, which the README's table does not list", path, r.name)
			} else if r.def != "" && def != r.def { // "see README" rows give none
				t.Errorf("%s: %s default %q, README %q", path, r.name, r.def, def)
			}
		}
	}
	if !slices.Contains([]string{"", ":9090"}, readme["ADMIN_ADDR"]) {
		t.Errorf("README ADMIN_ADDR default %q", readme["ADMIN_ADDR"])
	}
}
