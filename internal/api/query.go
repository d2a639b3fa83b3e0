package api

import (
	"net/http"
	"net/url"
	"strconv"
)

// pageQuery is the query of a cursor page: limit, starting_after (each
// route reads its own kind of cursor from it) and the query's values.
type pageQuery struct {
	Limit  int
	Cursor string
	Values url.Values
}

// parsePage reads limit (1–MaxPageSize, default DefaultPageSize) and
// starting_after from the query of a list route into fields. A query
// url.ParseQuery cannot read entirely (a pair holding a semicolon, a
// broken escape) is the caller's 400: Go leaves such pairs out, and
// answering without them would ignore a filter the caller sent.
func parsePage(r *http.Request, fields map[string]string) pageQuery {
	q := pageQuery{Limit: DefaultPageSize}
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		fields["query"] = queryMalformed(err)
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > MaxPageSize {
			fields["limit"] = "must be a whole number from 1 to " + strconv.Itoa(MaxPageSize)
		}
		q.Limit = n
	}
	q.Cursor, q.Values = v.Get("starting_after"), v
	return q
}

// validCurrency reports whether c is an ISO 4217 code as paystream stores
// it (three lower-case letters).
func validCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if c[i] < 'a' || c[i] > 'z' {
			return false
		}
	}
	return true
}
