package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/paystream/paystream/internal/config"
)

func TestRunFailsOnBadConfigBeforeConnecting(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		// The URLs point nowhere: reaching them would hang or fail differently.
		{"bad workers", map[string]string{"PROCESSOR_WORKERS": "many", "NATS_URL": "nats://192.0.2.1:4222"}, "PROCESSOR_WORKERS"},
		{"bad backoff", map[string]string{"PROCESSOR_BACKOFF": "1s,,2s"}, "PROCESSOR_BACKOFF"},
		{"bad database url", map[string]string{"DATABASE_URL": "mysql://x"}, "DATABASE_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(context.Background(), nil, config.MapEnv(tt.env), &bytes.Buffer{}, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run = %v, want an error naming %s", err, tt.want)
			}
		})
	}
	if err := run(context.Background(), []string{"--port", "1"}, config.MapEnv(nil), &bytes.Buffer{}, &bytes.Buffer{}); !errors.Is(err, errArgs) {
		t.Errorf("run with arguments = %v, want errArgs", err)
	}
}
