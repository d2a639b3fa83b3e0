package api

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
