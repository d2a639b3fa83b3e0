package stripeevent

import "encoding/json"

// Ref is a reference to another Stripe object in a payload: Stripe sends
// the object's id, or, when the request expanded it, the object itself
// (its id is then read). null is "".
type Ref string

func (r *Ref) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		*r = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		return json.Unmarshal(b, (*string)(r))
	}
	var obj struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &obj); err != nil {
		return err
	}
	*r = Ref(obj.ID)
	return nil
}
