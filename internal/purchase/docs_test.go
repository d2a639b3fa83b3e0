package purchase_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/model"
)

// docs/lifecycle.md's tables are read and checked against the code, so the
// documentation cannot drift from Transition.
func TestLifecycleDocMatchesCode(t *testing.T) {
	b, err := os.ReadFile("../../docs/lifecycle.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	section := func(title string) []string {
		t.Helper()
		i := strings.Index(doc, "## "+title)
		if i < 0 {
			t.Fatalf("docs/lifecycle.md has no section %q", title)
		}
		rest := doc[i+3:]
		if j := strings.Index(rest, "\n## "); j >= 0 {
			rest = rest[:j]
		}
		var rows []string
		for _, l := range strings.Split(rest, "\n") {
			if strings.HasPrefix(l, "| ") && !strings.HasPrefix(l, "|---") {
				rows = append(rows, l)
			}
		}
		return rows
	}
	cells := func(row string) []string {
		parts := strings.Split(strings.Trim(row, "|"), "|")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		return parts
	}
	single := regexp.MustCompile("^`([a-z_]+)`")

	statusRows, disputeRows := 0, 0
	for _, row := range section("Transition table") {
		c := cells(row)
		switch len(c) {
		case 5: // from status | trigger | to status | access | event
			tm := single.FindStringSubmatch(c[1])
			if tm == nil || c[1] != tm[0] {
				continue // header, or an amount-only row (refund growth), checked by the refund tests
			}
			from := ""
			if m := single.FindStringSubmatch(c[0]); m != nil {
				from = m[1]
			}
			to := ""
			if m := single.FindStringSubmatch(c[2]); m != nil {
				to = m[1]
			}
			got, changed := purchase.Transition(purchase.State{Status: from}, purchase.Trigger(tm[1]))
			if got.Status != to || changed != (to != from) {
				t.Errorf("doc row %q: code gives %+v (changed %v)", row, got, changed)
			}
			statusRows++
		case 6: // from flag | trigger | to flag | status | access | event
			tm := single.FindStringSubmatch(c[1])
			if tm == nil {
				continue
			}
			var froms []string
			if strings.HasPrefix(c[0], "none") {
				froms = append(froms, "")
			}
			if strings.Contains(c[0], "`open`") {
				froms = append(froms, model.DisputeOpen)
			}
			flag := single.FindStringSubmatch(c[2])[1]
			for _, status := range []string{model.PurchaseCompleted, model.PurchasePartiallyRefunded, model.PurchaseRefunded} {
				wantStatus := status
				if m := single.FindStringSubmatch(c[3]); m != nil {
					wantStatus = m[1]
				}
				for _, f := range froms {
					got, changed := purchase.Transition(purchase.State{Status: status, Dispute: f}, purchase.Trigger(tm[1]))
					if got.Dispute != flag || got.Status != wantStatus || !changed {
						t.Errorf("doc row %q from (%s, %q): code gives %+v", row, status, f, got)
					}
				}
			}
			disputeRows++
		}
	}
	if statusRows != 10 || disputeRows != 3 {
		t.Errorf("read %d status rows and %d dispute rows from the doc, want 10 and 3", statusRows, disputeRows)
	}
	events := strings.Join(section("Stripe events → triggers"), "\n")
	for _, typ := range purchase.HandledTypes() {
		if !strings.Contains(events, "`"+typ+"`") {
			t.Errorf("docs/lifecycle.md does not list handled type %s", typ)
		}
	}
}
