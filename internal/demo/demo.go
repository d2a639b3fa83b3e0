// Package demo holds the fixed identities of paystream's demo data, shared by
// `paystream seed` (which inserts them) and `paystream send` (which buys them
// and subscribes to them), so the two commands work together out of the box.
package demo

// Demo identities. They are valid UUIDs in a recognisable pattern so demo
// rows stand out in a shared database.
const (
	ContentID      = "00000000-0000-4000-8000-00000000c0de"
	OrganizationID = "00000000-0000-4000-8000-000000000026"
	CreatorID      = "creator_demo"
	CustomerID     = "user_demo"
	PriceCents     = 2999
	Currency       = "usd"
)

// Demo subscription plans of the demo organization: one for the demo
// creator's content, one for the whole organization's. Monthly, no trial,
// the default 3 grace days.
const (
	CreatorPlanID              = "00000000-0000-4000-8000-0000000005a1"
	CreatorPlanName            = "Demo creator monthly"
	CreatorPlanPriceCents      = 999
	OrganizationPlanID         = "00000000-0000-4000-8000-0000000005a2"
	OrganizationPlanName       = "Demo organization monthly"
	OrganizationPlanPriceCents = 2499
	PlanInterval               = "month"
	PlanGraceDays              = 3
)

// PlanPriceCents is the price of a demo plan, 0 for any other plan id.
func PlanPriceCents(planID string) int64 {
	switch planID {
	case CreatorPlanID:
		return CreatorPlanPriceCents
	case OrganizationPlanID:
		return OrganizationPlanPriceCents
	}
	return 0
}

// SecretFile is the file, under the dev data directory, where `paystream dev`
// writes the webhook signing secret it generated, and where `paystream send`
// looks for one when none is configured.
const SecretFile = "webhook-secret"
