package split

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/paystream/paystream/model"
)

// ContentAt is one (content, time) pair of ContentTermsAtMany.
type ContentAt struct {
	ContentID uuid.UUID
	At        time.Time
}

// ContentTerms is ContentTermsAt's answer for one ContentAt; Found is false
// when the content does not exist.
type ContentTerms struct {
	Content model.Content
	Terms   Terms
	Found   bool
}

// ContentTermsAtMany is ContentTermsAt for many (content, time) pairs in one
// statement: the keys are unnested WITH ORDINALITY and joined to content and
// to the same three laterals, judged at each key's own time. The answer has
// one entry per key, in the order of keys.
func ContentTermsAtMany(ctx context.Context, idb bun.IDB, keys []ContentAt) ([]ContentTerms, error) {
	out := make([]ContentTerms, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	ids, ats := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		ids[i], ats[i] = k.ContentID.String(), k.At.UTC().Format(time.RFC3339Nano)
	}
	var rows []struct {
		termsRow
		Ord            int        `bun:"ord"`
		ID             uuid.UUID  `bun:"id"`
		CreatorID      string     `bun:"creator_id"`
		OrganizationID uuid.UUID  `bun:"organization_id"`
		DeletedAt      *time.Time `bun:"deleted_at"`
	}
	q := termsColumns + `, k.ord, c.id, c.creator_id, c.organization_id, c.deleted_at
FROM unnest(?::uuid[], ?::timestamptz[]) WITH ORDINALITY AS k(content_id, at, ord)
JOIN content AS c ON c.id = k.content_id` + termsLateralsAt("c.organization_id", "c.creator_id", "k.at")
	if err := idb.NewRaw(q, pgdialect.Array(ids), pgdialect.Array(ats)).Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("look up %d contents and their terms: %w", len(keys), err)
	}
	for _, r := range rows {
		if r.Ord < 1 || r.Ord > len(keys) {
			return nil, fmt.Errorf("look up contents and their terms: ordinal %d out of range", r.Ord)
		}
		out[r.Ord-1] = ContentTerms{
			Content: model.Content{ID: r.ID, CreatorID: r.CreatorID, OrganizationID: r.OrganizationID, DeletedAt: r.DeletedAt},
			Terms:   r.terms(), Found: true,
		}
	}
	return out, nil
}
