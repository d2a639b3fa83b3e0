// Package demo holds the fixed identities of paystream's demo data, shared by
// `paystream seed` (which inserts them) and `paystream send` (which buys them),
// so the two commands work together out of the box.
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

// SecretFile is the file, under the dev data directory, where `paystream dev`
// writes the webhook signing secret it generated, and where `paystream send`
// looks for one when none is configured.
const SecretFile = "webhook-secret"
