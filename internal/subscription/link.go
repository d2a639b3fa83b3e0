package subscription

import (
	"strings"

	"github.com/google/uuid"

	"github.com/paystream/paystream/internal/fault"
)

// Metadata keys paystream's subscription checkout writes on the session and
// on subscription_data.metadata (so on the subscription and its invoices).
const (
	MetaCustomerID     = "customerId"
	MetaPlanID         = "planId"
	MetaOrganizationID = "organizationId"
)

// contract ties a Stripe subscription to paystream: the customer it grants
// access to and the plan sold.
type contract struct {
	CustomerID     string
	PlanID         uuid.UUID
	OrganizationID uuid.UUID
}

// parseLink reads the metadata contract. ok is false when none of its keys
// is set: a subscription sold by something other than paystream on the same
// Stripe account, which is none of paystream's business. A contract that is
// half there or malformed is an error naming the key.
func parseLink(owner string, md map[string]string) (l contract, ok bool, err error) {
	var missing []string
	present := 0
	for _, k := range []string{MetaCustomerID, MetaPlanID, MetaOrganizationID} {
		if strings.TrimSpace(md[k]) == "" {
			missing = append(missing, k)
		} else {
			present++
		}
	}
	if present == 0 {
		return contract{}, false, nil
	}
	if len(missing) > 0 {
		return contract{}, false, fault.New(fault.Invalid, "metadata_missing",
			"%s lacks metadata %s; paystream's subscription checkout sets %s, %s and %s",
			owner, strings.Join(missing, ", "), MetaCustomerID, MetaPlanID, MetaOrganizationID)
	}
	invalid := func(key, why string) error {
		return fault.New(fault.Invalid, "metadata_invalid", "%s: metadata %s=%q %s", owner, key, md[key], why)
	}
	l.CustomerID = md[MetaCustomerID]
	if len(l.CustomerID) > 255 || strings.TrimSpace(l.CustomerID) != l.CustomerID {
		return contract{}, false, invalid(MetaCustomerID, "must be at most 255 characters without surrounding spaces")
	}
	if l.PlanID, err = uuid.Parse(md[MetaPlanID]); err != nil {
		return contract{}, false, invalid(MetaPlanID, "is not a uuid")
	}
	if l.OrganizationID, err = uuid.Parse(md[MetaOrganizationID]); err != nil {
		return contract{}, false, invalid(MetaOrganizationID, "is not a uuid")
	}
	return l, true, nil
}
