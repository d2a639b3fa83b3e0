package subscription

import (
	"context"
	"testing"
	"time"

	"github.com/paystream/paystream/internal/testenv"
)

// The refetch the production Fetcher sends is a request Stripe's API
// description accepts (stripe-mock answers it), and what comes back decodes
// as the subscription asked for.
func TestRefetchRequestShapeAgainstStripeMock(t *testing.T) {
	base := testenv.StripeMock(t)
	f := fetcherFor(t, base, "sk_test_123", 10*time.Second)
	s, err := fetch(context.Background(), f, "sub_1QMockShape0000000001")
	if err != nil {
		t.Fatalf("refetch from stripe-mock: %v", err)
	}
	if s.ID != "sub_1QMockShape0000000001" || !knownStatus(s.Status) || s.StripeCustomerID == "" {
		t.Fatalf("decoded %+v", s)
	}
}
