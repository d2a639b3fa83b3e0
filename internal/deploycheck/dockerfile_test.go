package deploycheck

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// dockerStage is one `FROM … AS name` stage of the Dockerfile, with its
// instructions joined across line continuations.
type dockerStage struct {
	from  string
	name  string
	lines []string
}

// parseDockerfile splits a Dockerfile into stages. It understands what this
// repository's Dockerfile uses: comments, `\` continuations, FROM … AS.
func parseDockerfile(src string) []dockerStage {
	var stages []dockerStage
	var cont strings.Builder
	for _, raw := range strings.Split(src, "\n") {
		line := strings.TrimSpace(raw)
		if strings.HasPrefix(line, "#") || (line == "" && cont.Len() == 0) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cont.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cont.WriteString(line)
		full := cont.String()
		cont.Reset()
		f := strings.Fields(full)
		if len(f) == 0 {
			continue
		}
		if strings.EqualFold(f[0], "FROM") {
			st := dockerStage{from: f[1]}
			if len(f) == 4 && strings.EqualFold(f[2], "AS") {
				st.name = f[3]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) > 0 {
			stages[len(stages)-1].lines = append(stages[len(stages)-1].lines, full)
		}
	}
	return stages
}

// The image promises of the issue: a Go builder at least as new as go.mod
// asks for, static stripped binaries of the three commands, a distroless
// non-root runtime, and one target per binary with its entrypoint.
func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(string(readRepoFile(t, "Dockerfile")))
	byName := map[string]dockerStage{}
	for _, s := range stages {
		byName[s.name] = s
	}

	build, ok := byName["build"]
	if !ok {
		t.Fatalf("no build stage in %v", stages)
	}
	goMod := regexp.MustCompile(`(?m)^go (\d+)\.(\d+)`).FindStringSubmatch(string(readRepoFile(t, "go.mod")))
	image := regexp.MustCompile(`^golang:(\d+)\.(\d+)`).FindStringSubmatch(build.from)
	if goMod == nil || image == nil {
		t.Fatalf("cannot compare go.mod's go version %v with the builder image %q", goMod, build.from)
	}
	if version(image[1], image[2]) < version(goMod[1], goMod[2]) {
		t.Errorf("builder %s is older than go.mod's go %s.%s", build.from, goMod[1], goMod[2])
	}
	body := strings.Join(build.lines, "\n")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags="-s -w"`, "./cmd/edge", "./cmd/processor", "./cmd/api", "./cmd/paystream"} {
		if !strings.Contains(body, want) {
			t.Errorf("build stage lacks %s", want)
		}
	}

	for _, target := range []string{"edge", "processor", "api", "paystream"} {
		s, ok := byName[target]
		if !ok {
			t.Errorf("no target %s", target)
			continue
		}
		want := `ENTRYPOINT ["/usr/local/bin/` + target + `"]`
		if !strings.Contains(strings.Join(s.lines, "\n"), want) {
			t.Errorf("target %s lacks %s", target, want)
		}
		// Every target descends from the runtime stage, which is distroless,
		// non-root, and carries all three binaries (paystream is the
		// healthcheck probe of the others).
		runtime := byName[s.from]
		if !strings.HasPrefix(runtime.from, "gcr.io/distroless/static") || !strings.HasSuffix(runtime.from, ":nonroot") {
			t.Errorf("target %s runs on %q (via %s), want gcr.io/distroless/static…:nonroot", target, runtime.from, s.from)
		}
		rt := strings.Join(runtime.lines, "\n")
		for _, bin := range []string{"edge", "processor", "api", "paystream"} {
			if !strings.Contains(rt, "/out/"+bin) {
				t.Errorf("runtime stage %s does not copy the %s binary", s.from, bin)
			}
		}
	}
}

// version orders major.minor pairs.
func version(major, minor string) int {
	ma, _ := strconv.Atoi(major)
	mi, _ := strconv.Atoi(minor)
	return ma*1000 + mi
}
