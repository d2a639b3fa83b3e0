package api

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/paystream/paystream/internal/db"
	"github.com/paystream/paystream/model"
)

// ErrSessionUnknown: no checkout session of that id was created through the API.
var ErrSessionUnknown = errors.New("no checkout session of that id in checkout_sessions (was it created through the purchase API?)")

// LoadSession opens dsn and returns the checkout_sessions row of id: what
// `paystream send --api-session` needs to build the webhook Stripe would
// send when that session completes (its metadata is the row's).
func LoadSession(ctx context.Context, dsn, id string) (*model.CheckoutSession, error) {
	bdb, err := db.Open(ctx, dsn, db.Options{MaxOpenConns: 1})
	if err != nil {
		return nil, err
	}
	defer bdb.Close()
	var s model.CheckoutSession
	err = bdb.NewSelect().Model(&s).Where("id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", id, ErrSessionUnknown)
	}
	if err != nil {
		return nil, fmt.Errorf("load checkout session %s: %w", id, err)
	}
	return &s, nil
}
