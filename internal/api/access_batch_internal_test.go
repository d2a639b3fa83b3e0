package api

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/uptrace/bun"

	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/subscription"
	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/model"
)

// batchWorld is a database with one content item and customers c0…c(n-1):
// every third has a live complimentary grant, the next a revoked one, the
// next nothing, so neighbouring answers differ.
type batchWorld struct {
	db      *bun.DB
	dsn     string
	content uuid.UUID
	keys    []subscription.AccessKey
}

func newBatchWorld(t *testing.T, n int) batchWorld {
	t.Helper()
	bdb, dsn := testenv.DB(t)
	ctx := context.Background()
	w := batchWorld{db: bdb, dsn: dsn, content: uuid.New()}
	org := uuid.New()
	if _, err := bdb.NewInsert().Model(&model.Content{ID: w.content, CreatorID: "creator_1", OrganizationID: org,
		PriceCents: 500, Currency: "usd", Visibility: "public"}).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now().Add(-time.Hour)
	for i := range n {
		k := subscription.AccessKey{Customer: fmt.Sprintf("c%d", i), Content: w.content}
		w.keys = append(w.keys, k)
		if i%3 == 2 {
			continue
		}
		g := &model.ContentAccess{UserID: k.Customer, ContentID: w.content, OrganizationID: org,
			AccessType: model.AccessComplimentary, GrantedAt: time.Now().Add(-2 * time.Hour)}
		if i%3 == 1 {
			g.RevokedAt = &revoked
		}
		if _, err := bdb.NewInsert().Model(g).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// batcher returns a batcher over db with no worker running yet, and its
// batch-size histogram.
func (w batchWorld) batcher(t *testing.T, db *sql.DB, limit int) (*accessBatcher, prometheus.Histogram) {
	t.Helper()
	sizes := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sizes", Buckets: []float64{1, 2, 4, 8, 16, 32, 64}})
	b := newAccessBatcher(&accessStmt{db: db, query: subscription.AccessQuery},
		&accessStmt{db: db, query: subscription.AccessBatchQuery}, time.Now, limit, sizes)
	t.Cleanup(b.Close)
	return b, sizes
}

// checkAll runs check of every key in a goroutine of its own, waits until
// queued of them are queued, starts one worker and returns the answers.
func checkAll(t *testing.T, b *accessBatcher, ctxs []context.Context, keys []subscription.AccessKey, queued int) ([]subscription.Access, []error) {
	t.Helper()
	accs, errs := make([]subscription.Access, len(keys)), make([]error, len(keys))
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Go(func() { accs[i], errs[i] = b.check(ctxs[i], k) })
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(b.calls) < queued {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d checks queued after 10 s", len(b.calls), queued)
		}
		time.Sleep(time.Millisecond)
	}
	b.start(1)
	wg.Wait()
	return accs, errs
}

func background(n int) []context.Context {
	ctxs := make([]context.Context, n)
	for i := range ctxs {
		ctxs[i] = context.Background()
	}
	return ctxs
}

// histogram returns h's sample count and sum.
func histogram(t *testing.T, h prometheus.Histogram) (uint64, float64) {
	t.Helper()
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

// Checks queued while no worker is free are answered by one statement,
// each with its own answer: what the single statement answers for it.
func TestAccessBatcherAnswersQueuedChecksInOneStatement(t *testing.T) {
	w := newBatchWorld(t, 24)
	b, sizes := w.batcher(t, w.db.DB, 64)
	keys := append(append([]subscription.AccessKey{}, w.keys...), w.keys[0], w.keys[1]) // repeats too
	accs, errs := checkAll(t, b, background(len(keys)), keys, len(keys))
	for i, k := range keys {
		want, err := subscription.CheckAccess(context.Background(), w.db.DB, k.Customer, k.Content, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if errs[i] != nil || !reflect.DeepEqual(accs[i], want) {
			t.Errorf("%s: %+v, %v; want %+v", k.Customer, accs[i], errs[i], want)
		}
		if i%3 == 0 && i < len(w.keys) && !accs[i].Active {
			t.Errorf("%s: the live grant is not active: %+v", k.Customer, accs[i])
		}
	}
	if n, sum := histogram(t, sizes); n != 1 || sum != float64(len(keys)) {
		t.Errorf("batch sizes: %d statements, %v checks; want 1 statement of %d", n, sum, len(keys))
	}
}

// No more than limit checks share a statement; the rest take the next.
func TestAccessBatcherSplitsAtMax(t *testing.T) {
	w := newBatchWorld(t, 20)
	b, sizes := w.batcher(t, w.db.DB, 8) // the queue holds 8; the rest wait to enter it
	accs, errs := checkAll(t, b, background(len(w.keys)), w.keys, 8)
	for i := range w.keys {
		if errs[i] != nil || accs[i].Active != (i%3 == 0) {
			t.Errorf("c%d: %+v, %v", i, accs[i], errs[i])
		}
	}
	n, sum := histogram(t, sizes)
	if n < 3 || sum != float64(len(w.keys)) {
		t.Errorf("batch sizes: %d statements, %v checks; want at least 3 statements (8 at most each) of %d", n, sum, len(w.keys))
	}
}

// A check with no company runs the single statement, as soon as it
// arrives.
func TestAccessBatcherLoneCheck(t *testing.T) {
	w := newBatchWorld(t, 3)
	b, sizes := w.batcher(t, w.db.DB, 64)
	b.start(1)
	acc, err := b.check(context.Background(), w.keys[0])
	if err != nil || !acc.Active || acc.Type != model.AccessComplimentary {
		t.Fatalf("%+v, %v", acc, err)
	}
	if n, sum := histogram(t, sizes); n != 1 || sum != 1 {
		t.Errorf("batch sizes: %d statements, %v checks; want 1 of 1", n, sum)
	}
}

// A caller that gives up while queued gets its context's error and is left
// out of the statement; the others are answered.
func TestAccessBatcherSkipsCallersThatLeft(t *testing.T) {
	w := newBatchWorld(t, 3)
	b, sizes := w.batcher(t, w.db.DB, 64)
	gone, cancel := context.WithCancel(context.Background())
	ctxs := []context.Context{context.Background(), gone, context.Background()}
	accs, errs := make([]subscription.Access, 3), make([]error, 3)
	left := make(chan struct{})
	var wg sync.WaitGroup
	for i, k := range w.keys {
		wg.Go(func() {
			accs[i], errs[i] = b.check(ctxs[i], k)
			if i == 1 {
				close(left)
			}
		})
	}
	for len(b.calls) < 3 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-left // the caller returns on its own, with no worker running
	b.start(1)
	wg.Wait()
	if !errors.Is(errs[1], context.Canceled) {
		t.Errorf("the canceled check: %v", errs[1])
	}
	if errs[0] != nil || !accs[0].Active || errs[2] != nil || accs[2].Found {
		t.Errorf("the others: %+v %v, %+v %v", accs[0], errs[0], accs[2], errs[2])
	}
	if n, sum := histogram(t, sizes); n != 1 || sum != 2 {
		t.Errorf("batch sizes: %d statements, %v checks; want 1 of 2", n, sum)
	}
}

// A statement that fails fails each of its checks, with the database's
// error; the batcher goes on answering.
func TestAccessBatcherFailedStatementFailsItsChecks(t *testing.T) {
	w := newBatchWorld(t, 4)
	closed, err := db.Open(context.Background(), w.dsn, db.Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	_ = closed.Close()
	b, _ := w.batcher(t, closed.DB, 64)
	_, errs := checkAll(t, b, background(4), w.keys, 4)
	for i, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "database is closed") {
			t.Errorf("check %d: %v; want the database's error", i, err)
		}
	}
	good, _ := w.batcher(t, w.db.DB, 64)
	good.start(1)
	if acc, err := good.check(context.Background(), w.keys[0]); err != nil || !acc.Active {
		t.Errorf("after: %+v, %v", acc, err)
	}
}

// After Close, queued checks and new ones fail with errBatcherClosed, and
// none waits for ever.
func TestAccessBatcherClose(t *testing.T) {
	w := newBatchWorld(t, 2)
	b, _ := w.batcher(t, w.db.DB, 64)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, k := range w.keys {
		wg.Go(func() { _, errs[i] = b.check(context.Background(), k) })
	}
	for len(b.calls) < 2 {
		time.Sleep(time.Millisecond)
	}
	b.Close()
	wg.Wait()
	_, late := b.check(context.Background(), w.keys[0])
	for i, err := range append(errs, late) {
		if !errors.Is(err, errBatcherClosed) {
			t.Errorf("check %d: %v; want errBatcherClosed", i, err)
		}
	}
}
