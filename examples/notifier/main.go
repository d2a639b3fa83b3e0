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
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

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

// parseConfig reads the environment. The notifier uses only the standard
// library and the public streams package, so it can be copied into another
// module as is.
func parseConfig(getenv func(string) string) (notifierConfig, error) {
	c := notifierConfig{NATSURL: "nats://127.0.0.1:4222", Durable: "purchase-notifier"}
	var errs []error
	if v := strings.TrimSpace(getenv("NATS_URL")); v != "" {
		c.NATSURL = v
	}
	if v := strings.TrimSpace(getenv("NOTIFIER_DURABLE")); v != "" {
		c.Durable = v
	}
	if !streams.ValidEndpoint(c.Durable) {
		errs = append(errs, fmt.Errorf("NOTIFIER_DURABLE=%q: must be a lower-case consumer name such as purchase-notifier", c.Durable))
	}
	if v := strings.TrimSpace(getenv("LOG_LEVEL")); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			errs = append(errs, fmt.Errorf("LOG_LEVEL=%q: must be debug, info, warn or error", v))
		}
	}
	return c, errors.Join(errs...)
}

func run(ctx context.Context, _ []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel})).With("service", "notifier")
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
