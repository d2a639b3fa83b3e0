package api_test

import (
	"testing"

	"github.com/paystream/paystream/internal/api"
	"github.com/paystream/paystream/internal/purchase"
)

// The API writes the metadata contract the processor reads.
func TestMetadataKeysAreTheProcessors(t *testing.T) {
	for api, proc := range map[string]string{
		api.MetaCustomerID: purchase.MetaCustomerID, api.MetaContentID: purchase.MetaContentID,
		api.MetaOrganizationID: purchase.MetaOrganizationID, api.MetaAmountPaid: purchase.MetaAmountPaid,
		api.MetaCurrency: purchase.MetaCurrency,
	} {
		if api != proc {
			t.Errorf("api writes %q where the processor reads %q", api, proc)
		}
	}
}
