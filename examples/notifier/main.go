// Command notifier is an example downstream consumer of the PURCHASES stream:
// a purchase-confirmation notifier. It subscribes with its own durable
// consumer through streams.SubscribePurchases and, instead of sending mail,
// prints what it would send.
//
//	NATS_URL=nats://127.0.0.1:4222 NOTIFIER_DURABLE=purchase-notifier go run ./examples/notifier
//
// Run several copies with the same NOTIFIER_DURABLE and they share the work;
// a different durable name gets its own copy of every event.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/obs"
	"github.com/paystream/paystream/streams"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "notifier:", err)
		os.Exit(1)
	}
}

// notifierConfig is the environment of the notifier.
type notifierConfig struct {
	NATSURL  string     // NATS_URL
	Durable  string     // NOTIFIER_DURABLE
	LogLevel slog.Level // LOG_LEVEL
}

func parseConfig(getenv config.Getenv) (notifierConfig, error) {
	p := config.NewParser(getenv)
	common := config.ParseCommon(p)
	c := notifierConfig{NATSURL: common.NATSURL, LogLevel: common.LogLevel,
		Durable: p.String("NOTIFIER_DURABLE", "purchase-notifier")}
	if !streams.ValidEndpoint(c.Durable) {
		p.Fail("NOTIFIER_DURABLE", c.Durable, "must be a lower-case consumer name such as purchase-notifier")
	}
	return c, p.Err()
}

func run(ctx context.Context, _ []string, getenv config.Getenv, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(getenv)
	if err != nil {
		return err
	}
	log := obs.NewLogger(stderr, cfg.LogLevel, "notifier")
	nc, err := streams.Connect(cfg.NATSURL, "paystream-notifier", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := streams.NewJetStream(nc)
	if err != nil {
		return err
	}
	n := &notifier{out: stdout}
	cc, err := streams.SubscribePurchases(ctx, js, cfg.Durable, n.handle, streams.WithLogger(log))
	if err != nil {
		return err
	}
	log.Info("notifier consuming purchase events", "consumer", cfg.Durable)
	<-ctx.Done()
	// Graceful stop: finish the message in hand, then close.
	cc.Drain()
	select {
	case <-cc.Closed():
	case <-time.After(10 * time.Second):
		log.Warn("notifier drain timed out")
	}
	return nc.Drain()
}

// notifier turns purchase events into (pretend) customer emails.
type notifier struct {
	out io.Writer
}

// handle is idempotent in the way a real mailer must be: a real notifier
// records ev.ID in its own store before sending, and skips ids it has seen,
// because delivery is at least once.
func (n *notifier) handle(_ context.Context, ev streams.PurchaseEvent) error {
	d := ev.Data
	var line string
	switch ev.Type {
	case streams.PurchaseEventType(streams.PurchaseCompleted):
		line = fmt.Sprintf("would email customer %s about content %s: purchase %s confirmed, %s %s",
			d.CustomerID, d.ContentID, d.PurchaseID, money(d.AmountPaidCents), d.Currency)
	case streams.PurchaseEventType(streams.PurchaseRefunded):
		if d.Refund == nil {
			return fmt.Errorf("refund event %s without refund data", ev.ID)
		}
		line = fmt.Sprintf("would email customer %s about content %s: refund of %s %s on purchase %s",
			d.CustomerID, d.ContentID, money(d.Refund.DeltaCents), d.Currency, d.PurchaseID)
	default:
		return nil // other kinds need no customer email
	}
	_, err := fmt.Fprintln(n.out, line)
	return err
}

// money formats minor units with two decimals (right for usd, eur, …; a real
// mailer would use the currency's exponent).
func money(cents int64) string { return fmt.Sprintf("%d.%02d", cents/100, cents%100) }
