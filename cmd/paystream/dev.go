package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/paystream/paystream/internal/api"
	"github.com/paystream/paystream/internal/app"
	"github.com/paystream/paystream/internal/app/apiservice"
	"github.com/paystream/paystream/internal/app/processorservice"
	"github.com/paystream/paystream/internal/config"
	"github.com/paystream/paystream/internal/config/apiconfig"
	"github.com/paystream/paystream/internal/config/processorconfig"
	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/internal/demo"
	"github.com/paystream/paystream/internal/devenv"
	"github.com/paystream/paystream/internal/obs"
	"github.com/paystream/paystream/internal/stripefixture"
	"github.com/paystream/paystream/migrations"
)

// devOptions are the flags of `paystream dev`.
type devOptions struct {
	dataDir             string
	natsPort            int
	syncAlways          bool
	edgeAddr, edgeAdmin string
	processorAdmin      string
	apiAddr, apiAdmin   string
	noProcessor, noEdge bool
	noAPI               bool
	shutdownTimeout     time.Duration
}

// runDev is the all-in-one dev mode: an embedded nats-server, a Postgres
// (found or started), migrations, the edge and the processor in one process.
func runDev(ctx context.Context, args []string, getenv config.Getenv, stdout, stderr io.Writer) error {
	var o devOptions
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.dataDir, "data-dir", "./.paystream", "JetStream store, private Postgres cluster and generated secret live here")
	fs.IntVar(&o.natsPort, "nats-port", 4223, "embedded NATS client port (0 = any free port; 4222 is left to a system NATS)")
	fs.BoolVar(&o.syncAlways, "sync-always", false, "fsync every JetStream write, as the production NATS config does (sync_interval: always)")
	fs.StringVar(&o.edgeAddr, "edge-addr", "127.0.0.1:8080", "edge webhook listener")
	fs.StringVar(&o.edgeAdmin, "edge-admin-addr", "127.0.0.1:9090", "edge /metrics, /healthz, /readyz")
	fs.StringVar(&o.processorAdmin, "processor-admin-addr", "127.0.0.1:9091", "processor /metrics, /healthz, /readyz")
	fs.BoolVar(&o.noProcessor, "no-processor", false, "run without the processor (e.g. for `paystream bench edge`)")
	fs.BoolVar(&o.noEdge, "no-edge", false, "run without the edge")
	fs.StringVar(&o.apiAddr, "api-addr", "127.0.0.1:8081", "purchase API listener (runs when STRIPE_SECRET_KEY is set)")
	fs.StringVar(&o.apiAdmin, "api-admin-addr", "127.0.0.1:9092", "purchase API /metrics, /healthz, /readyz")
	fs.BoolVar(&o.noAPI, "no-api", false, "run without the purchase API even if STRIPE_SECRET_KEY is set")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 30*time.Second, "grace for in-flight work on Ctrl-C")
	setUsage(fs, stderr,
		"usage: paystream dev [flags]",
		"runs an embedded NATS (JetStream), Postgres (DATABASE_URL, else the local server, else a private",
		"cluster under <data-dir>/pg), migrations, the edge and the processor in one process, and the purchase",
		"API when STRIPE_SECRET_KEY is set (API_KEYS defaults to a key generated into <data-dir>). Ctrl-C stops it.",
		"env: DATABASE_URL, STRIPE_WEBHOOK_SECRET[_<NAME>], STRIPE_SECRET_KEY, API_KEYS, LOG_LEVEL, and every",
		"edge/processor/api variable",
	)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	p := config.NewParser(getenv)
	common := config.ParseCommon(p)
	if err := p.Err(); err != nil {
		return err
	}
	log := obs.NewLogger(stderr, common.LogLevel, "dev")
	stopTracing, err := obs.SetupTracing(ctx, getenv, "paystream-dev", log)
	if err != nil {
		return err
	}
	defer stopTracing()
	if err := os.MkdirAll(o.dataDir, 0o755); err != nil {
		return fmt.Errorf("dev: data directory: %w", err)
	}
	secret, generated, err := devSecret(getenv, o.dataDir)
	if err != nil {
		return err
	}

	// Postgres: DATABASE_URL, else the local default server, else a private cluster.
	dbURL, _ := p.Lookup("DATABASE_URL")
	pg, err := devenv.FindPostgres(ctx, devenv.PostgresOptions{DatabaseURL: dbURL, LocalURL: config.DefaultDatabaseURL, DataDir: o.dataDir}, log)
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	defer func() {
		if err := pg.Stop(); err != nil {
			log.Warn("stop private postgres", "error", err)
		}
	}()
	if err := devMigrate(ctx, pg.URL); err != nil {
		return err
	}

	ns, err := devenv.StartNATS(devenv.NATSOptions{Port: o.natsPort, StoreDir: filepath.Join(o.dataDir, "nats"), SyncAlways: o.syncAlways}, log)
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	natsURL := ns.ClientURL()

	// Every component reads the real environment with dev's choices on top.
	base := map[string]string{"NATS_URL": natsURL, "DATABASE_URL": pg.URL}
	if _, set := p.Lookup("STRIPE_WEBHOOK_SECRET"); !set {
		base["STRIPE_WEBHOOK_SECRET"] = secret
	}
	if _, set := p.Lookup(connectSecretVar); !set {
		base[connectSecretVar] = secret // the Connect endpoint too, for `paystream send account.updated`
	}
	env := config.Overlay(getenv, base)

	var services []app.Service
	var apiKey string // the generated dev key, "" when API_KEYS is set or the API is off
	if _, set := p.Lookup("STRIPE_SECRET_KEY"); set && !o.noAPI {
		over := map[string]string{"ADMIN_ADDR": o.apiAdmin}
		if _, set := p.Lookup("API_KEYS"); !set {
			if apiKey, err = devAPIKey(o.dataDir); err != nil {
				return err
			}
			over["API_KEYS"] = apiKey
		}
		acfg, err := apiconfig.Parse(config.Overlay(env, over))
		if err != nil {
			return err
		}
		acfg.Addr = o.apiAddr
		acfg.ShutdownTimeout = min(acfg.ShutdownTimeout, o.shutdownTimeout)
		services = append(services, apiservice.New(acfg))
	}
	if !o.noEdge {
		ecfg, err := config.ParseEdge(config.Overlay(env, map[string]string{"ADMIN_ADDR": o.edgeAdmin}), append(os.Environ(), "STRIPE_WEBHOOK_SECRET", connectSecretVar))
		if err != nil {
			return err
		}
		ecfg.Addr = o.edgeAddr
		services = append(services, app.Edge(ecfg))
	}
	if !o.noProcessor {
		pcfg, err := processorconfig.Parse(config.Overlay(env, map[string]string{"ADMIN_ADDR": o.processorAdmin}))
		if err != nil {
			return err
		}
		pcfg.ShutdownTimeout = min(pcfg.ShutdownTimeout, o.shutdownTimeout)
		services = append(services, processorservice.New(pcfg)...)
	}
	a, err := app.New(services, log, app.WithClientName("paystream-dev"), app.WithGrace(o.shutdownTimeout+5*time.Second),
		app.WithReady(func(addrs app.Addrs) {
			printBanner(stdout, devBanner{addrs: addrs, natsURL: natsURL, pg: pg, secret: secret, generated: generated,
				apiKey: apiKey, dataDir: o.dataDir, syncAlways: o.syncAlways})
			writeDevEnv(o.dataDir, natsURL, pg.URL, log)
		}))
	if err != nil {
		return err
	}
	err = a.Run(ctx)
	log.Info("dev: stopped")
	return err
}

// devSecret returns the secret devenv.WebhookSecret finds, else a new one
// saved under dataDir.
func devSecret(getenv config.Getenv, dataDir string) (secret string, generated bool, err error) {
	secret, generated, err = devenv.WebhookSecret(getenv, dataDir)
	if err != nil || secret != "" {
		return secret, generated, err
	}
	secret = stripefixture.NewSecret()
	if err := os.WriteFile(filepath.Join(dataDir, demo.SecretFile), []byte(secret+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("dev: save generated secret: %w", err)
	}
	return secret, true, nil
}

// apiKeyFile is the file, under the dev data directory, where `paystream
// dev` keeps the purchase API key it generated (API_KEYS unset).
const apiKeyFile = "api-key"

// devAPIKey returns the API key a previous dev run generated, else a new one
// saved under dataDir.
func devAPIKey(dataDir string) (string, error) {
	path := filepath.Join(dataDir, apiKeyFile)
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= api.MinKeyLength {
		return strings.TrimSpace(string(b)), nil
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("dev: generate api key: %w", err)
	}
	key := "dev_" + hex.EncodeToString(b)
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("dev: save generated api key: %w", err)
	}
	return key, nil
}

// devMigrate brings the schema of url up to date before the services start.
func devMigrate(ctx context.Context, url string) error {
	bdb, err := migrations.OpenMigrated(ctx, url, db.Options{MaxOpenConns: 2})
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	return bdb.Close()
}

// devBanner is what the dev mode tells the developer once everything runs.
type devBanner struct {
	addrs      app.Addrs
	natsURL    string
	pg         *devenv.Postgres
	secret     string
	generated  bool
	apiKey     string
	dataDir    string
	syncAlways bool
}

func printBanner(w io.Writer, b devBanner) {
	fmt.Fprintln(w, "paystream dev is running (Ctrl-C to stop)")
	if a := b.addrs.Edge.Public; a != "" {
		fmt.Fprintf(w, "  webhooks:          POST http://%s/webhooks/stripe\n", a)
		fmt.Fprintf(w, "  connect webhooks:  POST http://%s/webhooks/stripe/connect\n", a)
	}
	if b.generated {
		fmt.Fprintf(w, "  signing secret:    %s (generated, saved in %s)\n", b.secret, filepath.Join(b.dataDir, demo.SecretFile))
	} else {
		fmt.Fprintln(w, "  signing secret:    from STRIPE_WEBHOOK_SECRET")
	}
	if a := b.addrs.API.Public; a != "" {
		fmt.Fprintf(w, "  purchase api:      http://%s/v1/ (docs/api.md)\n", a)
		if b.apiKey != "" {
			fmt.Fprintf(w, "  api key:           %s (generated, saved in %s)\n", b.apiKey, filepath.Join(b.dataDir, apiKeyFile))
		} else {
			fmt.Fprintln(w, "  api key:           from API_KEYS")
		}
	} else {
		fmt.Fprintln(w, "  purchase api:      off (runs when STRIPE_SECRET_KEY is set, unless --no-api)")
	}
	if a := b.addrs.Edge.Admin; a != "" {
		fmt.Fprintf(w, "  edge metrics:      http://%s/metrics\n", a)
	}
	if a := b.addrs.API.Admin; a != "" {
		fmt.Fprintf(w, "  api metrics:       http://%s/metrics\n", a)
	}
	for _, a := range b.addrs.ProcessorAdmin {
		fmt.Fprintf(w, "  processor metrics: http://%s/metrics\n", a)
	}
	sync := "default (fsync every 2 min)"
	if b.syncAlways {
		sync = "always"
	}
	fmt.Fprintf(w, "  nats:              %s (JetStream in %s, sync %s)\n", b.natsURL, filepath.Join(b.dataDir, "nats"), sync)
	fmt.Fprintf(w, "  postgres:          %s (%s)\n", db.Redact(b.pg.URL), b.pg.Source)
	fmt.Fprintf(w, "  other shells:      source %s   # exports NATS_URL and DATABASE_URL\n", filepath.Join(b.dataDir, "env"))
	if a := b.addrs.Edge.Public; a != "" {
		fmt.Fprintf(w, "  try:               paystream seed && paystream send checkout.session.completed --url http://%s/webhooks/stripe && paystream status\n", a)
	}
}

// writeDevEnv saves the URLs for other shells (`source .paystream/env`).
func writeDevEnv(dataDir, natsURL, dbURL string, log *slog.Logger) {
	content := "export NATS_URL=" + strconv.Quote(natsURL) + "\nexport DATABASE_URL=" + strconv.Quote(dbURL) + "\n"
	if err := os.WriteFile(filepath.Join(dataDir, "env"), []byte(content), 0o600); err != nil {
		log.Warn("dev: write env file", "error", err)
	}
}
