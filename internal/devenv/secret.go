package devenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/paystream/paystream/internal/demo"
)

// WebhookSecret returns the signing secret the dev tools (`paystream dev`,
// `paystream send`) use: the first value of STRIPE_WEBHOOK_SECRET, else the
// one a `paystream dev` run generated into dataDir (generated is then
// true), else "" when there is neither.
func WebhookSecret(getenv func(string) string, dataDir string) (secret string, generated bool, err error) {
	if v := strings.TrimSpace(getenv("STRIPE_WEBHOOK_SECRET")); v != "" {
		return strings.TrimSpace(strings.Split(v, ",")[0]), false, nil
	}
	b, err := os.ReadFile(filepath.Join(dataDir, demo.SecretFile))
	if err == nil && strings.HasPrefix(strings.TrimSpace(string(b)), "whsec_") {
		return strings.TrimSpace(string(b)), true, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("read generated secret: %w", err)
	}
	return "", false, nil
}
