package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/paystream/paystream/internal/config"
)

// runHealth probes an admin endpoint and exits non-zero unless it answers
// 200. The container images are static binaries without curl or wget, so
// compose healthchecks call this.
func runHealth(ctx context.Context, args []string, _ config.Getenv, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:9090/readyz", "URL to probe")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	setUsage(fs, stderr,
		"usage: paystream health [--url URL] [--timeout 3s]",
		"exits 0 when URL answers 200 (for container healthchecks)",
	)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: %s answered %s: %s", *url, resp.Status, body)
	}
	fmt.Fprintf(stdout, "%s %s\n", resp.Status, body)
	return nil
}
