package obs

import (
	"io"
	"log/slog"
	"testing"
)

// BenchmarkWithPlain and BenchmarkWithUnique compare a per-event With on the
// bare JSON handler and on the logger tree (go test -bench With ./internal/obs).
func BenchmarkWithPlain(b *testing.B) {
	l := slog.New(slog.NewJSONHandler(io.Discard, nil)).With("service", "processor").With("component", "purchase")
	b.ReportAllocs()
	for b.Loop() {
		_ = l.With("stripe_event_id", "evt_123", "subject", "stripe.events.default.checkout.session.completed", "num_delivered", 1, "stream_seq", 42)
	}
}

func BenchmarkWithUnique(b *testing.B) {
	l := NewLogger(io.Discard, slog.LevelInfo, "processor").With("component", "purchase")
	b.ReportAllocs()
	for b.Loop() {
		_ = l.With("stripe_event_id", "evt_123", "subject", "stripe.events.default.checkout.session.completed", "num_delivered", 1, "stream_seq", 42)
	}
}
