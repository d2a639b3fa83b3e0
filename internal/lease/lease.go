// Package lease elects one instance of the processor group for a periodic
// job (the reconcile, the payout run): a lease on a JetStream key-value
// bucket whose TTL is the job's interval, and the loop that runs the job
// every interval under it.
package lease

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Elector decides which of the instances running a periodic job does a
// given run.
// Acquire takes the lease if no one holds it and reports, when it could not,
// how long the current holder's lease has left. Renew extends a held lease
// during a long run; ErrLost means someone else has it now.
type Elector interface {
	Acquire(ctx context.Context) (held bool, retryIn time.Duration, err error)
	Renew(ctx context.Context) error
}

// ErrLost means the lease expired and another instance took it.
var ErrLost = errors.New("lease lost to another instance")

// key is the one key of a job's bucket.
const key = "periodic"

// KV is an Elector on a JetStream key-value bucket whose TTL is the job's
// interval. Acquire creates the key (which fails while it exists),
// the holder renews it while its run lasts, and the key is left to expire
// after the run rather than deleted: it is both the mutual exclusion and the
// record that the group ran within the last interval. A holder that crashes
// stops renewing, and its lease expires one TTL after its last renewal.
type KV struct {
	js     jetstream.JetStream
	name   string // the bucket
	ttl    time.Duration
	holder string
	now    func() time.Time

	mu  sync.Mutex
	kv  jetstream.KeyValue
	rev uint64
}

var _ Elector = (*KV)(nil)

// NewKV returns the lease of the job whose bucket is bucket (one bucket per
// job), held as holder (an instance name, for operators) for ttl, normally
// the job's interval. The bucket is created at the first Acquire.
func NewKV(js jetstream.JetStream, bucket string, ttl time.Duration, holder string) (*KV, error) {
	if js == nil || bucket == "" || ttl < 100*time.Millisecond || holder == "" {
		return nil, fmt.Errorf("lease %q: JetStream, a bucket, a TTL of at least 100ms and a holder name are required (ttl %s)", bucket, ttl)
	}
	return &KV{js: js, name: bucket, ttl: ttl, holder: holder, now: time.Now}, nil
}

func (l *KV) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	if l.kv != nil {
		return l.kv, nil
	}
	kv, err := l.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      l.name,
		Description: "which processor instance runs the periodic job; a key lives one interval",
		TTL:         l.ttl,
		History:     1,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("lease bucket %s: %w", l.name, err)
	}
	l.kv = kv
	return kv, nil
}

// Acquire implements Elector.
func (l *KV) Acquire(ctx context.Context) (bool, time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	kv, err := l.bucket(ctx)
	if err != nil {
		return false, 0, err
	}
	rev, err := kv.Create(ctx, key, []byte(l.holder))
	if err == nil {
		l.rev = rev
		return true, 0, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return false, 0, fmt.Errorf("take lease %s: %w", l.name, err)
	}
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, 0, nil // expired just now: try again at once
	}
	if err != nil {
		return false, 0, fmt.Errorf("read lease %s: %w", l.name, err)
	}
	return false, max(e.Created().Add(l.ttl).Sub(l.now()), 0), nil
}

// Renew implements Elector.
func (l *KV) Renew(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	kv, err := l.bucket(ctx)
	if err != nil {
		return err
	}
	rev, err := kv.Update(ctx, key, []byte(l.holder), l.rev)
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return fmt.Errorf("%w: %w", ErrLost, err)
		}
		return fmt.Errorf("renew lease %s: %w", l.name, err)
	}
	l.rev = rev
	return nil
}

// RunElected runs f under the lease e, held for ttl and renewed every third
// of it; f's context is cancelled if the lease is lost to another instance,
// so two runs never overlap.
func RunElected(ctx context.Context, e Elector, ttl time.Duration, f func(ctx context.Context)) error {
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(rctx)
	}()
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	var renewErr error
	for {
		select {
		case <-done:
			return renewErr
		case <-t.C:
			err := e.Renew(rctx)
			if errors.Is(err, ErrLost) {
				cancel(err)
				<-done
				return err
			}
			renewErr = err // a broker hiccup: the next renewal may still make it
		}
	}
}
