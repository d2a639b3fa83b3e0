package processor_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/loadgen"
	"github.com/paystream/paystream/internal/processor"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
	"github.com/paystream/paystream/streams"
)

// BenchmarkPipeline is the processor side of `paystream bench pipeline` in
// one process, for profiling: b.N checkout events are loaded into an embedded
// JetStream (file storage), then one processor with the real purchase handler
// on testenv's Postgres is timed until every event is committed and acked.
// The sub-benchmarks compare batch sizes (32 is the default), 64 also with
// the consumer's MaxAckPending raised so ten workers can each hold a full
// batch; ns/op is per event. ledger-µs/ev is the time workers spent in the
// posting's accounts statement per event: waiting for the accounts' row
// locks (the platform's, creator's and organization's rows every sale
// updates, held by another batch until its commit) and running it.
func BenchmarkPipeline(b *testing.B) {
	for _, bc := range []struct {
		name       string
		batch      int
		ackPending int // 0: the default
	}{{"batch1", 1, 0}, {"batch16", 16, 0}, {"batch32", 32, 0}, {"batch64", 64, 0}, {"batch64-ack640", 64, 640}} {
		b.Run(bc.name, func(b *testing.B) {
			js := testenv.StartNATS(b).JetStream(b)
			bdb, _ := testenv.DB(b)
			accounts := &statementTime{contains: "INSERT INTO ledger_accounts"}
			bdb.AddQueryHook(accounts)
			ctx := context.Background()
			org, content := uuid.New(), uuid.New()
			if _, err := bdb.NewInsert().Model(&model.Content{ID: content, CreatorID: "creator_bench", OrganizationID: org,
				PriceCents: 2999, Currency: "usd", Visibility: "public"}).Exec(ctx); err != nil {
				b.Fatal(err)
			}
			pl, err := loadgen.NewPayloads(loadgen.PayloadSpec{ContentID: content.String(), OrganizationID: org.String(),
				Amount: 2999, Currency: "usd"})
			if err != nil {
				b.Fatal(err)
			}
			if err := loadgen.Load(ctx, js, pl, b.N, 16); err != nil {
				b.Fatal(err)
			}
			log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
			h, err := purchase.NewHandler(bdb, purchase.Config{}, purchase.NewMetrics(prometheus.NewRegistry()), log)
			if err != nil {
				b.Fatal(err)
			}
			cfg := processor.Config{BatchSize: bc.batch}
			cfg.Consumer.MaxAckPending = bc.ackPending
			p, err := processor.New(js, h, cfg, processor.NewMetrics(nil), log)
			if err != nil {
				b.Fatal(err)
			}
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			b.ReportAllocs()
			accounts.take()
			b.ResetTimer()
			go func() { done <- p.Run(rctx) }()
			cons, err := js.Consumer(ctx, streams.EventsStream, streams.ProcessorConsumer)
			for err != nil {
				time.Sleep(5 * time.Millisecond)
				cons, err = js.Consumer(ctx, streams.EventsStream, streams.ProcessorConsumer)
			}
			for {
				info, err := cons.Info(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if info.AckFloor.Stream >= uint64(b.N) {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(accounts.take().Microseconds())/float64(b.N), "ledger-µs/ev")
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			if n, err := bdb.NewSelect().Table("purchases").Count(ctx); err != nil || n != int64(b.N) {
				b.Fatalf("%d purchases for %d events (%v)", n, b.N, err)
			}
		})
	}
}

// statementTime sums the time of the statements containing a string, over
// all connections.
type statementTime struct {
	contains string
	mu       sync.Mutex
	total    time.Duration
}

func (s *statementTime) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	return ctx
}

func (s *statementTime) AfterQuery(_ context.Context, ev *bun.QueryEvent) {
	if strings.Contains(ev.Query, s.contains) {
		d := time.Since(ev.StartTime)
		s.mu.Lock()
		s.total += d
		s.mu.Unlock()
	}
}

// take returns the time summed since the last take.
func (s *statementTime) take() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.total
	s.total = 0
	return d
}
