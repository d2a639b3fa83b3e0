package stripeevent

// MaxObjectIDLen bounds a Stripe object id paystream stores or looks up.
const MaxObjectIDLen = 255

// ValidObjectID reports whether id is shaped like a Stripe object id
// (cs_test_a1B2…, pi_3N…, cus_…, ch_…, re_…, dp_…, acct_…, sub_…, in_…):
// 1 to MaxObjectIDLen ASCII letters, digits and underscores. A payload
// signed with the endpoint's secret can still carry anything in an id field;
// ids are keys paystream stores and queries by, so one that is not an id is
// refused as an invalid payload at once, never sent to the database (where a
// NUL byte would cut the SQL text and look like a failure worth retrying).
func ValidObjectID(id string) bool {
	if id == "" || len(id) > MaxObjectIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z') && !('A' <= c && c <= 'Z') && !('0' <= c && c <= '9') && c != '_' {
			return false
		}
	}
	return true
}
