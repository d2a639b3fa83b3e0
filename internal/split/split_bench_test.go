package split

import (
	"testing"

	"github.com/google/uuid"
)

// BenchmarkCompute is the pure split arithmetic of one purchase (the lookups
// of TermsAt are database round trips, measured in purchase's BenchmarkHandle).
func BenchmarkCompute(b *testing.B) {
	id := uuid.New()
	t := Terms{PlatformBps: 1250, OrganizationBps: 3000, PlatformAgreementID: &id}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compute(2999, t); err != nil {
			b.Fatal(err)
		}
	}
}
