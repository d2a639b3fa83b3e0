package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/demo"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
)

// readmeStep is one command of the README's quick start.
type readmeStep struct {
	// cmd is the command as the README writes it, comment included; a
	// command continued with a backslash keeps its line breaks.
	cmd string
	// shell 1 is a process the reader leaves running in the first shell
	// (dev, or a job started with &); shell 2 is the second shell, one bash
	// for every such step, so variables and `source` carry over; shell 0
	// is not run (why says why).
	shell int
	// stopsDev: the reader first stops the dev running in shell 1 with
	// Ctrl-C (SIGINT to its process group).
	stopsDev bool
	// ready is what a shell-1 step prints once it serves.
	ready string
	// want is what the output must hold: the README comment's promise.
	want []string
	// settles: the promise depends on the processor committing an event
	// just accepted, so the command is run again for up to 15 s, as a
	// reader who looks a moment later would.
	settles bool
	// holds, when set, checks the README's promise in the database
	// (polled like settles).
	holds func(ctx context.Context, bdb *bun.DB) error
	why   string
}

// demoPurchaseSplit is the first block's promise: user_demo bought the demo
// content, 2999 usd split 300 / 135 / 2564.
func demoPurchaseSplit(ctx context.Context, bdb *bun.DB) error {
	var p model.Purchase
	if err := bdb.NewSelect().Model(&p).Where("customer_id = ?", demo.CustomerID).Scan(ctx); err != nil {
		return fmt.Errorf("purchase of %s: %w", demo.CustomerID, err)
	}
	if p.ContentID.String() != demo.ContentID || p.Status != model.PurchaseCompleted || p.AmountPaidCents != 2999 ||
		p.Currency != "usd" || p.PlatformFeeCents != 300 || p.OrganizationFeeCents != 135 || p.CreatorPayoutCents != 2564 {
		return fmt.Errorf("purchase %+v, want a completed 2999 usd purchase of the demo content split 300 / 135 / 2564", p)
	}
	return nil
}

// demoCreatorOnboarded is the Connect webhook's promise: creator_demo's
// payee has its Express account and may receive payouts.
func demoCreatorOnboarded(ctx context.Context, bdb *bun.DB) error {
	var p model.Payee
	if err := bdb.NewSelect().Model(&p).Where("kind = ? AND id = ?", model.PayeeCreator, demo.CreatorID).Scan(ctx); err != nil {
		return fmt.Errorf("payee %s: %w", demo.CreatorID, err)
	}
	if p.StripeAccountID == nil || !p.PayoutsEnabled {
		return fmt.Errorf("payee %+v, want an account with payouts enabled", p)
	}
	return nil
}

// demoCreatorPaid is the payout run's promise: one paid payout of
// creator_demo's share of its three sales, 3 × 2564 usd, to its account.
func demoCreatorPaid(ctx context.Context, bdb *bun.DB) error {
	var ps []model.Payout
	if err := bdb.NewSelect().Model(&ps).Where("payee_id = ?", demo.CreatorID).Scan(ctx); err != nil {
		return err
	}
	if len(ps) != 1 || ps[0].Status != model.PayoutPaid || ps[0].AmountCents != 3*2564 || ps[0].Currency != "usd" ||
		ps[0].StripeTransferID == nil {
		return fmt.Errorf("payouts of %s: %+v, want one paid payout of 7692 usd", demo.CreatorID, ps)
	}
	return nil
}

// demoPlan is the membership block's first promise: a plan of the demo
// content's creator, 900 usd a month with a 7-day trial.
func demoPlan(ctx context.Context, bdb *bun.DB) error {
	var p model.SubscriptionPlan
	if err := bdb.NewSelect().Model(&p).Where("name = 'Demo monthly'").Scan(ctx); err != nil {
		return fmt.Errorf("the demo plan: %w", err)
	}
	if p.CreatorID == nil || *p.CreatorID != demo.CreatorID || p.OrganizationID.String() != demo.OrganizationID ||
		p.PriceCents != 900 || p.TrialDays != 7 {
		return fmt.Errorf("plan %+v, want the demo creator's, 900 a month with 7 trial days", p)
	}
	return nil
}

// oneMembershipSession: asked twice, the API made one subscription
// checkout session for user_7, still open.
func oneMembershipSession(ctx context.Context, bdb *bun.DB) error {
	var rows []model.SubscriptionCheckoutSession
	if err := bdb.NewSelect().Model(&rows).Where("customer_id = 'user_7'").Scan(ctx); err != nil {
		return err
	}
	if len(rows) != 1 || rows[0].Status != model.CheckoutOpen || rows[0].AmountCents != 900 {
		return fmt.Errorf("subscription checkout sessions of user_7: %+v, want one open session of 900", rows)
	}
	return nil
}

// quickStart is the README's quick start, command by command, in order.
// TestReadmeQuickStart checks that it is exactly the commands of the
// README's "Quick start" section, then runs them.
var quickStart = []readmeStep{
	{cmd: "go run ./cmd/paystream dev", shell: 1, ready: "other shells:"},
	{cmd: "source .paystream/env                                    # NATS_URL and DATABASE_URL of the dev process", shell: 2},
	{cmd: "go run ./cmd/paystream seed                              # demo content + agreements (10 % platform, 5 % organization)",
		shell: 2, want: []string{"00000000-0000-4000-8000-00000000c0de"}},
	{cmd: "go run ./cmd/paystream send checkout.session.completed   # → 200: user_demo buys the demo content, 2999 usd split 300 / 135 / 2564",
		shell: 2, want: []string{"-> 200"}, holds: demoPurchaseSplit},
	{cmd: "go run ./cmd/paystream status                            # streams, lag, DLQ depth, outbox backlog, schema",
		shell: 2, want: []string{"STRIPE_EVENTS", "STRIPE_DLQ", "outbox"}},
	{cmd: "go tool stripe-mock -http-addr 127.0.0.1:12111 -https-addr 127.0.0.1:12112 &                     # shell 1",
		shell: 1, ready: "Listening for HTTP at address: 127.0.0.1:12111"},
	{cmd: "STRIPE_SECRET_KEY=sk_test_123 STRIPE_API_BASE=http://127.0.0.1:12111 go run ./cmd/paystream dev   # shell 1",
		shell: 1, stopsDev: true, ready: "other shells:"},
	{cmd: "source .paystream/env && go run ./cmd/paystream seed                                              # shell 2",
		shell: 2},
	{cmd: `K=$(cat .paystream/api-key) C=00000000-0000-4000-8000-00000000c0de`, shell: 2},
	{cmd: `curl -si -X POST localhost:8081/v1/checkout/sessions -H "Authorization: Bearer $K" -H 'Idempotency-Key: order-1' \` + "\n" +
		`     -d '{"customer_id":"user_42","content_id":"'$C'"}' | tee .paystream/checkout   # → HTTP/1.1 201 … "id":"cs_test_…"`,
		shell: 2, want: []string{"HTTP/1.1 201", `"id":"cs_test_`, `"customer_id":"user_42"`}},
	{cmd: `S=$(grep -o '"id":"cs_[^"]*' .paystream/checkout | cut -d'"' -f4)                   # the session's id`,
		shell: 2},
	{cmd: `go run ./cmd/paystream send checkout.session.completed --api-session $S           # Stripe's webhook for it → 200`,
		shell: 2, want: []string{"-> 200"}},
	{cmd: `curl -s localhost:8081/v1/customers/user_42/access/$C -H "Authorization: Bearer $K"    # → "active":true`,
		shell: 2, want: []string{`"active":true`}, settles: true},
	{cmd: `curl -s localhost:8081/v1/customers/user_42/purchases -H "Authorization: Bearer $K"    # → the purchase, its split`,
		shell: 2, want: []string{`"customer_id":"user_42"`, `"status":"completed"`, `"platform_fee_cents":300`}, settles: true},
	{cmd: `curl -si -X POST localhost:8081/v1/checkout/sessions -H "Authorization: Bearer $K" \` + "\n" +
		`     -d '{"customer_id":"user_42","content_id":"'$C'"}'                             # → HTTP/1.1 409 … already_owned`,
		shell: 2, want: []string{"HTTP/1.1 409", "already_owned"}},
	{cmd: `P=$(psql "$DATABASE_URL" -qAtc "INSERT INTO subscription_plans (organization_id, creator_id, name, price_cents, \` + "\n" +
		`     currency, interval, trial_days) SELECT organization_id, creator_id, 'Demo monthly', 900, 'usd', 'month', 7 \` + "\n" +
		`     FROM content WHERE id = '$C' RETURNING id")                                    # the plan's id`,
		shell: 2, holds: demoPlan},
	{cmd: `curl -si -X POST localhost:8081/v1/subscriptions/checkout -H "Authorization: Bearer $K" -H 'Idempotency-Key: join-1' \` + "\n" +
		`     -d '{"customer_id":"user_7","plan_id":"'$P'"}'                   # → HTTP/1.1 201 … "mode":"subscription","trial_days":7`,
		shell: 2, want: []string{"HTTP/1.1 201", `"mode":"subscription"`, `"trial_days":7`, `"amount_cents":900`}},
	{cmd: `curl -si -X POST localhost:8081/v1/subscriptions/checkout -H "Authorization: Bearer $K" \` + "\n" +
		`     -d '{"customer_id":"user_7","plan_id":"'$P'"}'                   # → HTTP/1.1 200 … "status":"open": the same session`,
		shell: 2, want: []string{"HTTP/1.1 200", `"status":"open"`, `"customer_id":"user_7"`}, holds: oneMembershipSession},
	{cmd: `curl -s localhost:8081/v1/customers/user_7/subscriptions -H "Authorization: Bearer $K"  # → "data":[] until Stripe pays`,
		shell: 2, want: []string{`"object":"list"`, `"data":[]`}},
	{cmd: `curl -s -X POST localhost:8081/v1/payees/creator/creator_demo/onboarding -H "Authorization: Bearer $K" | tee .paystream/onboarding   # → "url":"https://…","stripe_account_id":"acct_…"`,
		shell: 2, want: []string{`"url":"https://`, `"stripe_account_id":"acct_`}},
	{cmd: `A=$(grep -o '"stripe_account_id":"[^"]*' .paystream/onboarding | cut -d'"' -f4)                    # the creator's Express account`,
		shell: 2},
	{cmd: `go run ./cmd/paystream send checkout.session.completed --customer user_9                           # → 200: creator_demo sells again`,
		shell: 2, want: []string{"-> 200"}},
	{cmd: `go run ./cmd/paystream send account.updated --account $A --payouts-enabled --charges-enabled        # Stripe's Connect webhook: onboarded → 200`,
		shell: 2, want: []string{"-> 200"}, holds: demoCreatorOnboarded},
	{cmd: `go run ./cmd/paystream ledger backfill                                                              # → ledger backfill: posted …`,
		shell: 2, want: []string{"ledger backfill: posted"}},
	{cmd: `STRIPE_SECRET_KEY=sk_test_123 STRIPE_API_BASE=http://127.0.0.1:12111 PAYOUT_HOLD=0 go run ./cmd/paystream payouts run   # → paid 1: 7692 usd`,
		shell: 2, want: []string{"7692 usd"}, holds: demoCreatorPaid},
	{cmd: `curl -s localhost:8081/v1/payees/creator/creator_demo -H "Authorization: Bearer $K"                # → "payouts_enabled":true … "paid_out":7692`,
		shell: 2, want: []string{`"payouts_enabled":true`, `"paid_out":7692`}},
	{cmd: `curl -s "localhost:8081/v1/reports/revenue?currency=usd&from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z" -H "Authorization: Bearer $K"   # → "gross":8997 … "paid_out":7692`,
		shell: 2, want: []string{`"gross":8997`, `"creator_share":7692`, `"paid_out":7692`}},
	{cmd: "go test -race -count=1 ./...", why: "the test suite, of which this test is part"},
}

// readmePorts are the fixed addresses the quick start's commands use.
var readmePorts = []string{"8080", "8081", "9090", "9091", "9092", "4223", "12111", "12112"}

// The README's quick start, read top to bottom on a fresh clone, gives what
// each block says. The commands run verbatim under bash in an empty
// directory (a fresh clone has no .paystream), with two substitutions a
// reader would not notice: `go run ./cmd/paystream` and `go tool
// stripe-mock` are a `go` on PATH that runs the same programs built once
// (a `go run` per command would take most of a minute), and DATABASE_URL
// names a fresh database (as the README allows), so no earlier purchase is
// found. Whatever the commands need and is missing (Postgres, bash, curl,
// a free README port) fails the test; -short skips it.
func TestReadmeQuickStart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the README's commands (-short)")
	}
	got := readmeQuickStartCommands(t)
	var listed []string
	for _, s := range quickStart {
		listed = append(listed, s.cmd)
	}
	if strings.Join(got, "\n\n") != strings.Join(listed, "\n\n") {
		t.Fatalf("the README's quick start is not the list this test runs; update quickStart in readme_test.go.\nREADME:\n%s\n\nlist:\n%s",
			strings.Join(got, "\n"), strings.Join(listed, "\n"))
	}

	for _, tool := range []string{"bash", "curl", "grep", "cut", "tee", "cat", "psql"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the quick start needs %s on PATH: %v", tool, err)
		}
	}
	for _, p := range readmePorts {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+p, 200*time.Millisecond); err == nil {
			_ = c.Close()
			t.Fatalf("127.0.0.1:%s is in use; the quick start's commands need the README's ports %v free", p, readmePorts)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	conn, err := pgx.Connect(ctx, testenv.AdminURL())
	cancel()
	if err != nil {
		t.Fatalf("the quick start needs a Postgres: %s unreachable (set PAYSTREAM_TEST_DATABASE_URL): %v", db.Redact(testenv.AdminURL()), err)
	}
	_ = conn.Close(context.Background())

	dsn := testenv.PostgresURL(t)
	env := readmeEnv(t, dsn)
	dir := t.TempDir()
	start := time.Now()
	procs := make([]*readmeProc, len(quickStart))
	t.Cleanup(func() {
		for _, p := range procs {
			if p != nil {
				p.kill()
			}
		}
	})
	bdb, err := db.Open(context.Background(), dsn, db.Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bdb.Close() })
	var sh *readmeShell
	for i, s := range quickStart {
		switch s.shell {
		case 0:
			t.Logf("not run: %s (%s)", s.cmd, s.why)
			continue
		case 1:
			if s.stopsDev {
				for j, p := range procs {
					if p != nil && strings.Contains(p.cmd, "paystream dev") && !p.stopped() {
						procs[j].interrupt(t)
					}
				}
			}
			procs[i] = startReadmeProc(t, dir, env, s)
			continue
		}
		if sh == nil {
			sh = startReadmeShell(t, dir, env)
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			out, code := sh.run(t, s.cmd)
			missing := missingFrom(out, s.want)
			if code == 0 && missing == "" {
				break
			}
			if !s.settles || time.Now().After(deadline) {
				dumpReadmeProcs(t, procs)
				t.Fatalf("README step %d\n  %s\nexited %d, missing %q; output:\n%s", i, s.cmd, code, missing, out)
			}
			time.Sleep(250 * time.Millisecond)
		}
		if s.holds != nil {
			err := s.holds(context.Background(), bdb)
			for deadline := time.Now().Add(15 * time.Second); err != nil && time.Now().Before(deadline); {
				time.Sleep(250 * time.Millisecond)
				err = s.holds(context.Background(), bdb)
			}
			if err != nil {
				dumpReadmeProcs(t, procs)
				t.Fatalf("README step %d\n  %s\ndoes not hold: %v", i, s.cmd, err)
			}
		}
	}
	t.Logf("quick start ran in %s", time.Since(start).Round(time.Millisecond))
}

// dumpReadmeProcs logs what the shell-1 processes printed.
func dumpReadmeProcs(t *testing.T, procs []*readmeProc) {
	t.Helper()
	for _, p := range procs {
		if p != nil {
			t.Logf("shell 1 `%s` printed:\n%s", p.cmd, p.out.String())
		}
	}
}

// readmeQuickStartCommands returns the commands of the ```sh blocks of the
// README's "Quick start" section, continuation lines joined.
func readmeQuickStartCommands(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, "\n## Quick start\n")
	if i < 0 {
		t.Fatal("README.md has no section ## Quick start")
	}
	section := doc[i+1:]
	if j := strings.Index(section[3:], "\n## "); j >= 0 {
		section = section[:j+3]
	}
	var cmds []string
	inBlock, cont := false, false
	for _, l := range strings.Split(section, "\n") {
		switch {
		case !inBlock && l == "```sh":
			inBlock = true
		case inBlock && l == "```":
			inBlock = false
		case inBlock && cont:
			cmds[len(cmds)-1] += "\n" + l
		case inBlock && strings.TrimSpace(l) != "":
			cmds = append(cmds, l)
		}
		cont = inBlock && strings.HasSuffix(l, `\`)
	}
	return cmds
}

// readmeEnv is the environment of a reader's shells: PATH with a `go` that
// runs the prebuilt programs, a home of its own, the fresh database, and
// nothing of paystream's configuration.
func readmeEnv(t *testing.T, dsn string) []string {
	t.Helper()
	bin := buildCLI(t)
	out, err := exec.Command("go", "tool", "-n", "stripe-mock").Output()
	if err != nil {
		t.Fatalf("go tool -n stripe-mock: %v (stripe-mock is pinned in go.mod)", err)
	}
	mock := strings.TrimSpace(string(out))
	shim := t.TempDir()
	script := fmt.Sprintf(`#!/bin/sh
# The README's go commands, prebuilt.
if [ "$1" = run ] && [ "$2" = ./cmd/paystream ]; then shift 2; exec %q "$@"; fi
if [ "$1" = tool ] && [ "$2" = stripe-mock ]; then shift 2; exec %q "$@"; fi
echo "readme test: the quick start ran an unexpected go $*" >&2
exit 127
`, bin, mock)
	if err := os.WriteFile(filepath.Join(shim, "go"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return []string{
		"PATH=" + shim + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + t.TempDir(),
		"TMPDIR=" + os.TempDir(),
		"DATABASE_URL=" + dsn,
	}
}

// missingFrom returns the first of want that out lacks, or "".
func missingFrom(out string, want []string) string {
	for _, w := range want {
		if !strings.Contains(out, w) {
			return w
		}
	}
	return ""
}

// readmeProc is a shell-1 command: bash -c in a process group of its own,
// so a job it starts with & is stopped with it.
type readmeProc struct {
	cmd    string
	c      *exec.Cmd
	out    testenv.LogBuffer
	exited chan struct{}
}

func startReadmeProc(t *testing.T, dir string, env []string, s readmeStep) *readmeProc {
	t.Helper()
	p := &readmeProc{cmd: s.cmd, exited: make(chan struct{})}
	p.c = exec.Command("bash", "--noprofile", "--norc", "-c", s.cmd)
	p.c.Dir, p.c.Env, p.c.Stdout, p.c.Stderr = dir, env, &p.out, &p.out
	p.c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.c.Start(); err != nil {
		t.Fatalf("start %s: %v", s.cmd, err)
	}
	go func() { _ = p.c.Wait(); close(p.exited) }()
	deadline := time.After(60 * time.Second)
	for !strings.Contains(p.out.String(), s.ready) {
		select {
		case <-deadline:
			t.Fatalf("`%s` did not print %q within 60s; it printed:\n%s", s.cmd, s.ready, p.out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if strings.Contains(s.cmd, "paystream dev") {
		// dev writes .paystream/env right after its banner.
		for i := 0; ; i++ {
			if _, err := os.Stat(filepath.Join(dir, ".paystream", "env")); err == nil {
				break
			} else if i == 100 {
				t.Fatalf("dev printed its banner but wrote no .paystream/env: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return p
}

// interrupt is the reader's Ctrl-C: SIGINT to the process group, then
// waiting for a graceful exit.
func (p *readmeProc) interrupt(t *testing.T) {
	t.Helper()
	_ = syscall.Kill(-p.c.Process.Pid, syscall.SIGINT)
	select {
	case <-p.exited:
	case <-time.After(45 * time.Second):
		t.Fatalf("`%s` did not stop within 45s of Ctrl-C; it printed:\n%s", p.cmd, p.out.String())
	}
}

func (p *readmeProc) stopped() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

func (p *readmeProc) kill() {
	_ = syscall.Kill(-p.c.Process.Pid, syscall.SIGKILL)
	<-p.exited
}

// readmeShell is the second shell: one bash reading commands on stdin.
type readmeShell struct {
	in    io.Writer
	lines chan string
	n     int
}

func startReadmeShell(t *testing.T, dir string, env []string) *readmeShell {
	t.Helper()
	c := exec.Command("bash", "--noprofile", "--norc")
	c.Dir, c.Env = dir, env
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	in, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.Stderr = c.Stdout
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = in.Close()
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		_ = c.Wait()
	})
	sh := &readmeShell{in: in, lines: make(chan string, 1024)}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			sh.lines <- sc.Text()
		}
		close(sh.lines)
	}()
	if _, err := io.WriteString(in, "exec 2>&1\n"); err != nil {
		t.Fatal(err)
	}
	return sh
}

// run types cmd into the shell and returns its output and exit status.
func (sh *readmeShell) run(t *testing.T, cmd string) (string, int) {
	t.Helper()
	sh.n++
	marker := fmt.Sprintf("@@readme-step-%d", sh.n)
	// The marker starts on a line of its own even when the output does not
	// end with a newline (curl -s of a body).
	if _, err := fmt.Fprintf(sh.in, "%s\necho; echo %s $?\n", cmd, marker); err != nil {
		t.Fatalf("write to the shell: %v", err)
	}
	var out strings.Builder
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-sh.lines:
			if !ok {
				t.Fatalf("the shell exited during\n  %s\noutput:\n%s", cmd, out.String())
			}
			if rest, found := strings.CutPrefix(l, marker+" "); found {
				var code int
				_, _ = fmt.Sscan(rest, &code)
				return out.String(), code
			}
			out.WriteString(l + "\n")
		case <-timeout:
			t.Fatalf("no end of\n  %s\nwithin 60s; output so far:\n%s", cmd, out.String())
		}
	}
}
