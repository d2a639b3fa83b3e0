package devenv_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/paystream/paystream/internal/demo"
	"github.com/paystream/paystream/internal/devenv"
)

func TestWebhookSecret(t *testing.T) {
	withFile := func(content string) string {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, demo.SecretFile), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	tests := []struct {
		name          string
		env           string
		dir           string
		want          string
		wantGenerated bool
	}{
		{"first of the configured secrets", " whsec_a , whsec_b", withFile("whsec_file\n"), "whsec_a", false},
		{"generated file when unset", "", withFile(" whsec_file\n"), "whsec_file", true},
		{"blank variable counts as unset", "  ", withFile("whsec_file\n"), "whsec_file", true},
		{"file that is not a secret", "", withFile("garbage\n"), "", false},
		{"no file", "", t.TempDir(), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k == "STRIPE_WEBHOOK_SECRET" {
					return tt.env
				}
				return ""
			}
			got, generated, err := devenv.WebhookSecret(getenv, tt.dir)
			if err != nil || got != tt.want || generated != tt.wantGenerated {
				t.Errorf("WebhookSecret = %q, %v, %v; want %q, %v", got, generated, err, tt.want, tt.wantGenerated)
			}
		})
	}
	t.Run("unreadable file", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, demo.SecretFile), 0o700); err != nil { // a directory cannot be read as a file
			t.Fatal(err)
		}
		if _, _, err := devenv.WebhookSecret(func(string) string { return "" }, dir); err == nil {
			t.Error("WebhookSecret over a directory succeeded")
		}
	})
}
