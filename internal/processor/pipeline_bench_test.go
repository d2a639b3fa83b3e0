package processor_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

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
// The sub-benchmarks compare batch sizes; ns/op is per event.
func BenchmarkPipeline(b *testing.B) {
	for _, bc := range []struct {
		name  string
		batch int
	}{{"batch1", 1}, {"batch16", 16}} {
		b.Run(bc.name, func(b *testing.B) {
			js := testenv.StartNATS(b).JetStream(b)
			bdb, _ := testenv.DB(b)
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
			p, err := processor.New(js, h, processor.Config{BatchSize: bc.batch}, processor.NewMetrics(nil), log)
			if err != nil {
				b.Fatal(err)
			}
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			b.ReportAllocs()
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
