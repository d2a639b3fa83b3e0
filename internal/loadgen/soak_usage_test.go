package loadgen

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/paystream/paystream/internal/testenv"
)

// remembered counts the messages stored within the stream's dedup window,
// the ids the broker still holds: all of them while the window reaches back
// past the first, the newer ones once older ones have left it.
func TestRememberedCountsTheIDsOfTheDedupWindow(t *testing.T) {
	ctx := context.Background()
	js, err := jetstream.New(testenv.StartNATS(t).Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R", Subjects: []string{"r.>"}, Duplicates: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	publish := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			m := nats.NewMsg("r.x")
			m.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("id-%d", i))
			if _, err := js.PublishMsg(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	count := func() uint64 {
		t.Helper()
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n, err := remembered(ctx, st, info)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	publish(0, 5)
	if n := count(); n != 5 {
		t.Fatalf("within the window: %d ids, want 5", n)
	}
	time.Sleep(1200 * time.Millisecond)
	publish(5, 7)
	if n := count(); n != 2 {
		t.Fatalf("after the first five left the window: %d ids, want 2", n)
	}
	consumers := st.ListConsumers(ctx)
	for ci := range consumers.Info() {
		t.Errorf("consumer %s left behind", ci.Name)
	}
	if err := consumers.Err(); err != nil {
		t.Fatal(err)
	}
}
