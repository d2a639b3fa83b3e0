package deploycheck

import (
	"fmt"
	"strings"
	"testing"
	"unicode"
)

// markdownAnchors returns the anchors GitHub gives the headings of a Markdown
// document: lower case, spaces to hyphens, punctuation other than - and _
// dropped. Headings inside fenced code blocks are not headings. Two headings
// with the same anchor are an error: GitHub would suffix the second (-1) and
// a runbook link could land on the wrong section.
func markdownAnchors(doc string) (map[string]bool, error) {
	anchors := map[string]bool{}
	inFence := false
	for _, line := range strings.Split(doc, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			inFence = !inFence
			continue
		}
		if inFence || !strings.HasPrefix(line, "#") {
			continue
		}
		text := strings.TrimLeft(line, "#")
		if len(line)-len(text) > 6 || (text != "" && text[0] != ' ') {
			continue // not an ATX heading, e.g. #hashtag
		}
		a := slug(strings.TrimSpace(text))
		if anchors[a] {
			return nil, fmt.Errorf("two headings share the anchor #%s", a)
		}
		anchors[a] = true
	}
	return anchors, nil
}

// slug is GitHub's heading anchor for text.
func slug(text string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestMarkdownAnchors(t *testing.T) {
	doc := "# Runbook\n\n## PaystreamDLQNotEmpty\ntext\n### How to fix: replay `dlq`\n```sh\n# not a heading\n```\n#hashtag\n"
	got, err := markdownAnchors(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"runbook", "paystreamdlqnotempty", "how-to-fix-replay-dlq"} {
		if !got[want] {
			t.Errorf("anchor %q missing from %v", want, got)
		}
	}
	for _, not := range []string{"not-a-heading", "hashtag"} {
		if got[not] {
			t.Errorf("%q must not be an anchor", not)
		}
	}
	if _, err := markdownAnchors("## A b\n## a B\n"); err == nil {
		t.Error("duplicate anchors were not reported")
	}
}
