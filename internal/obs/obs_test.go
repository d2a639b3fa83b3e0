package obs

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestLoggerTreeHasNoDuplicateKeys(t *testing.T) {
	var buf bytes.Buffer
	root := NewLogger(&buf, slog.LevelInfo, "dev")
	proc := root.With("component", "processor")
	purchase := proc.With("component", "purchase", "subject", "a")
	purchase.With("subject", "b", "stripe_event_id", "evt_1").Info("applied", "outcome", "applied")
	root.With("component", "edge").Info("listening")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %q", buf.String())
	}
	for _, l := range lines {
		if dup := duplicateKey(l); dup != "" {
			t.Errorf("duplicate key %q in %s", dup, l)
		}
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatalf("not JSON (a bytes.Buffer is no terminal): %v", err)
	}
	want := map[string]any{"service": "dev", "component": "processor/purchase", "subject": "b", "stripe_event_id": "evt_1", "outcome": "applied"}
	for k, v := range want {
		if first[k] != v {
			t.Errorf("%s = %v, want %v (line %s)", k, first[k], v, lines[0])
		}
	}
	if !strings.Contains(lines[1], `"component":"edge"`) {
		t.Errorf("a sibling must not inherit its cousin's component: %s", lines[1])
	}
}

func TestLoggerGroupsKeepOuterAttrs(t *testing.T) {
	var buf bytes.Buffer
	NewLogger(&buf, slog.LevelInfo, "edge").With("component", "x").WithGroup("req").With("component", "y").Info("m", "k", 1)
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m["component"] != "x" || m["service"] != "edge" {
		t.Fatalf("outer attrs lost: %s", buf.String())
	}
	if g, _ := m["req"].(map[string]any); g["component"] != "y" || g["k"] != float64(1) {
		t.Fatalf("group attrs: %s", buf.String())
	}
}

func TestLoggerLevel(t *testing.T) {
	var buf bytes.Buffer
	NewLogger(&buf, slog.LevelWarn, "edge").Info("hidden")
	if buf.Len() != 0 {
		t.Fatalf("info logged at warn level: %s", buf.String())
	}
}

// duplicateKey returns a top-level key that occurs twice in the JSON object
// line, or "".
func duplicateKey(line string) string {
	dec := json.NewDecoder(strings.NewReader(line))
	if _, err := dec.Token(); err != nil { // {
		return "<invalid>"
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "<invalid>"
		}
		k := tok.(string)
		if seen[k] {
			return k
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return "<invalid>"
		}
	}
	return ""
}

func TestLoggerRepeatedKeyWithinOneWith(t *testing.T) {
	var buf bytes.Buffer
	NewLogger(&buf, slog.LevelInfo, "edge").With("k", 1, "k", 2).Info("m")
	if dup := duplicateKey(strings.TrimSpace(buf.String())); dup != "" {
		t.Fatalf("duplicate key %q in %s", dup, buf.String())
	}
	if !strings.Contains(buf.String(), `"k":2`) {
		t.Fatalf("newest value lost: %s", buf.String())
	}
}
