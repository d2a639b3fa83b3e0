package streams

import "context"

// ListAllPaged is ListAll with a page size a test can make small.
func (d *DLQ) ListAllPaged(ctx context.Context, reason string, page int) ([]DeadLetterMsg, error) {
	return d.listAll(ctx, reason, page)
}
