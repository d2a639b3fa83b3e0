package streams

import (
	"reflect"
	"testing"
	"time"
)

// Every field a stream definition sets is one manage compares and restores:
// a field added to Definitions without teaching manage would otherwise never
// reach a stream that already exists.
func TestManageCoversEveryDefinedField(t *testing.T) {
	for _, def := range DefaultConfig().Definitions() {
		if have := def; manage(&have, def) {
			t.Errorf("%s: manage reports a change against its own definition", def.Name)
		}
		v := reflect.ValueOf(def)
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if f.Name == "Name" || v.Field(i).IsZero() {
				continue // the name selects the stream; zero fields are the server's
			}
			have := def
			hv := reflect.ValueOf(&have).Elem().Field(i)
			switch hv.Kind() {
			case reflect.String:
				hv.SetString(hv.String() + "x")
			case reflect.Slice:
				if hv.Type().Elem().Kind() != reflect.String {
					t.Fatalf("%s.%s: a %s; teach this test to change it", def.Name, f.Name, hv.Type())
				}
				hv.Set(reflect.Append(hv, reflect.ValueOf("x")))
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
				hv.SetInt(hv.Int() + 1)
			case reflect.Bool:
				hv.SetBool(!hv.Bool())
			default:
				t.Fatalf("%s.%s: a %s; teach this test to change it", def.Name, f.Name, hv.Type())
			}
			if !manage(&have, def) {
				t.Errorf("%s.%s: a stream whose %s differs is left as it is", def.Name, f.Name, f.Name)
			}
			if !reflect.DeepEqual(have, def) {
				t.Errorf("%s.%s: manage left %v, want %v", def.Name, f.Name, hv.Interface(), v.Field(i).Interface())
			}
		}
	}
	// Zero Replicas and Duplicates are the server's to fill in.
	def := DefaultConfig().AdvisoriesDefinition()
	have := def
	have.Replicas, have.Duplicates = 1, 2*time.Minute
	if def.Duplicates != 0 || manage(&have, def) {
		t.Errorf("the server's dedup window on %s counts as a change", def.Name)
	}
}
