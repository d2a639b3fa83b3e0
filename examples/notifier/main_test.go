package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/paystream/paystream/internal/testenv"
	"github.com/paystream/paystream/streams"
)

func TestNotifierPrintsConfirmation(t *testing.T) {
	n := testenv.StartNATS(t)
	js := n.JetStream(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut testenv.LogBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, nil, mapEnv(map[string]string{"NATS_URL": n.URL(), "NOTIFIER_DURABLE": "notifier-test"}), &out, &errOut)
	}()

	pid, content := uuid.New(), uuid.New()
	body, _ := json.Marshal(streams.PurchaseEvent{SpecVersion: "1.0", ID: uuid.NewString(), Source: streams.PurchaseEventSource,
		Type: streams.PurchaseEventType(streams.PurchaseCompleted), Subject: pid.String(), Time: time.Now(),
		DataContentType: "application/json", Data: streams.PurchaseData{PurchaseID: pid, CustomerID: "user_42",
			ContentID: content, AmountPaidCents: 2999, Currency: "usd", Status: "completed"}})
	m := nats.NewMsg("purchases.completed")
	m.Data = body
	if _, err := streams.PublishMsg(context.Background(), js, m); err != nil {
		t.Fatal(err)
	}
	want := "would email customer user_42 about content " + content.String()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("stdout %q lacks %q; stderr: %s", out.String(), want, errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "29.99 usd") {
		t.Errorf("stdout = %q", out.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run = %v", err)
	}
}

func TestNotifierRejectsBadConfig(t *testing.T) {
	err := run(context.Background(), nil, mapEnv(map[string]string{"NOTIFIER_DURABLE": "Bad Name"}), &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "NOTIFIER_DURABLE") {
		t.Fatalf("run = %v, want an error naming NOTIFIER_DURABLE", err)
	}
}

// mapEnv adapts a map to the getenv run takes.
func mapEnv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
