package processorconfig_test

import (
	"strings"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/config/processorconfig"
	"github.com/paystream/paystream/streams"
)

func TestParseDefaults(t *testing.T) {
	c, err := processorconfig.Parse(config.MapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	def := streams.DefaultConsumerConfig()
	if c.AdminAddr != ":9091" || c.Workers != 10 || c.DBMaxConns != 10 || c.HandleTimeout != 20*time.Second ||
		c.ShutdownTimeout != 25*time.Second || c.Consumer.AckWait != def.AckWait || c.Consumer.MaxDeliver != def.MaxDeliver ||
		c.Consumer.MaxAckPending != def.MaxAckPending || len(c.Consumer.Backoff) != len(def.Backoff) ||
		c.NATSURL != config.DefaultNATSURL || c.BatchSize != 32 {
		t.Errorf("defaults = %+v", c)
	}
	if err := c.Consumer.Validate(); err != nil {
		t.Errorf("default consumer config invalid: %v", err)
	}
}

func TestParseReadsEveryVariable(t *testing.T) {
	c, err := processorconfig.Parse(config.MapEnv(map[string]string{
		"ADMIN_ADDR": "127.0.0.1:0", "PROCESSOR_WORKERS": "4", "PROCESSOR_ACK_WAIT": "45s",
		"PROCESSOR_MAX_ACK_PENDING": "100", "PROCESSOR_MAX_DELIVER": "5", "PROCESSOR_BACKOFF": "1s, 10s,1m",
		"PROCESSOR_HANDLE_TIMEOUT": "10s", "PROCESSOR_SHUTDOWN_TIMEOUT": "40s", "DB_MAX_CONNS": "8",
		"PROCESSOR_BATCH_SIZE": "1", "PROCESSOR_BATCH_WAIT": "5ms", "PROCESSOR_PARTIAL_BATCHES": "3",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := streams.ConsumerConfig{AckWait: 45 * time.Second, MaxAckPending: 100, MaxDeliver: 5,
		Backoff: []time.Duration{time.Second, 10 * time.Second, time.Minute}}
	if c.AdminAddr != "127.0.0.1:0" || c.Workers != 4 || c.DBMaxConns != 8 || c.HandleTimeout != 10*time.Second ||
		c.ShutdownTimeout != 40*time.Second || c.Consumer.AckWait != want.AckWait || c.Consumer.MaxAckPending != 100 ||
		c.Consumer.MaxDeliver != 5 || len(c.Consumer.Backoff) != 3 || c.Consumer.Backoff[2] != time.Minute ||
		c.BatchSize != 1 || c.BatchWait != 5*time.Millisecond || c.PartialBatches != 3 {
		t.Errorf("parsed = %+v", c)
	}
	// Workers follow the pool size unless set.
	c, err = processorconfig.Parse(config.MapEnv(map[string]string{"DB_MAX_CONNS": "20"}))
	if err != nil || c.Workers != 20 {
		t.Errorf("workers with DB_MAX_CONNS=20: %d, %v", c.Workers, err)
	}
	// Partial batches default to 2, or to the workers when fewer.
	c, err = processorconfig.Parse(config.MapEnv(map[string]string{"PROCESSOR_WORKERS": "1", "DB_MAX_CONNS": "1"}))
	if err != nil || c.PartialBatches != 1 {
		t.Errorf("partial batches with one worker: %d, %v", c.PartialBatches, err)
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string // the variable the error must name
	}{
		{"bad admin addr", map[string]string{"ADMIN_ADDR": "nope"}, "ADMIN_ADDR"},
		{"workers not a number", map[string]string{"PROCESSOR_WORKERS": "ten"}, "PROCESSOR_WORKERS"},
		{"workers over pool", map[string]string{"PROCESSOR_WORKERS": "20", "DB_MAX_CONNS": "10"}, "PROCESSOR_WORKERS"},
		{"workers over ack pending", map[string]string{"PROCESSOR_WORKERS": "20", "DB_MAX_CONNS": "20", "PROCESSOR_MAX_ACK_PENDING": "5"}, "PROCESSOR_WORKERS"},
		{"ack wait too short", map[string]string{"PROCESSOR_ACK_WAIT": "10ms"}, "PROCESSOR_ACK_WAIT"},
		{"one delivery", map[string]string{"PROCESSOR_MAX_DELIVER": "1"}, "PROCESSOR_MAX_DELIVER"},
		{"backoff garbage", map[string]string{"PROCESSOR_BACKOFF": "1s,soon"}, "PROCESSOR_BACKOFF"},
		{"backoff longer than deliveries", map[string]string{"PROCESSOR_MAX_DELIVER": "3", "PROCESSOR_BACKOFF": "1s,2s,3s"}, "PROCESSOR_BACKOFF"},
		{"handle timeout past shutdown", map[string]string{"PROCESSOR_HANDLE_TIMEOUT": "30s"}, "PROCESSOR_HANDLE_TIMEOUT"},
		{"shutdown timeout garbage", map[string]string{"PROCESSOR_SHUTDOWN_TIMEOUT": "-1s"}, "PROCESSOR_SHUTDOWN_TIMEOUT"},
		{"batch size zero", map[string]string{"PROCESSOR_BATCH_SIZE": "0"}, "PROCESSOR_BATCH_SIZE"},
		{"batch size over 64", map[string]string{"PROCESSOR_BATCH_SIZE": "65"}, "PROCESSOR_BATCH_SIZE"},
		{"batch size garbage", map[string]string{"PROCESSOR_BATCH_SIZE": "lots"}, "PROCESSOR_BATCH_SIZE"},
		{"batch wait negative", map[string]string{"PROCESSOR_BATCH_WAIT": "-1ms"}, "PROCESSOR_BATCH_WAIT"},
		{"batch wait over a second", map[string]string{"PROCESSOR_BATCH_WAIT": "2s"}, "PROCESSOR_BATCH_WAIT"},
		{"partial batches zero", map[string]string{"PROCESSOR_PARTIAL_BATCHES": "0"}, "PROCESSOR_PARTIAL_BATCHES"},
		{"partial batches past workers", map[string]string{"PROCESSOR_WORKERS": "4", "PROCESSOR_PARTIAL_BATCHES": "5"}, "PROCESSOR_PARTIAL_BATCHES"},
		{"pool zero", map[string]string{"DB_MAX_CONNS": "0"}, "DB_MAX_CONNS"},
		{"common still checked", map[string]string{"NATS_URL": "http://x"}, "NATS_URL"},
		{"domain still checked", map[string]string{"OUTBOX_BATCH_SIZE": "0"}, "OUTBOX_BATCH_SIZE"},
		{"periodic reconcile without a key", map[string]string{"RECONCILE_INTERVAL": "1h"}, "STRIPE_SECRET_KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := processorconfig.Parse(config.MapEnv(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseProcessor = %v, want an error naming %s", err, tt.want)
			}
		})
	}
}
