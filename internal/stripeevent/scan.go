package stripeevent

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"time"
)

// envelope is the top level of a Stripe event, as json.Unmarshal fills it
// from the body.
type envelope struct {
	ID         string `json:"id"`
	Object     string `json:"object"`
	Type       string `json:"type"`
	APIVersion string `json:"api_version"`
	Livemode   bool   `json:"livemode"`
	Created    int64  `json:"created"`
}

// ErrNotEvent is a JSON body whose object is not "event".
var ErrNotEvent = errors.New(`not a Stripe event: object is not "event"`)

// Parse reads a Stripe event body into an Event whose Payload is body: its
// id, type, api_version, livemode and created, in one pass that also
// validates the whole body as JSON, without decoding data.object. It fails
// when body is not JSON or is not an event object (ErrNotEvent); it does not
// judge the values (the edge checks the id and type it will publish).
func Parse(body []byte) (Event, error) {
	env, err := scan(body)
	if err != nil {
		return Event{}, err
	}
	if env.Object != "event" {
		return Event{}, ErrNotEvent
	}
	ev := Event{ID: env.ID, Type: env.Type, APIVersion: env.APIVersion, Livemode: env.Livemode, Payload: body}
	if env.Created != 0 {
		ev.Created = time.Unix(env.Created, 0).UTC()
	}
	return ev, nil
}

// scan reads the envelope of a Stripe event body without decoding
// data.object: it validates the whole body as JSON (the same grammar as
// encoding/json) and extracts the six top-level keys of envelope.
//
// Why: json.Unmarshal into the small envelope struct still runs its generic
// state machine over every byte of the 2–3 KB body and was most of the edge's
// own CPU per request (pprof of BenchmarkVerify). This scanner does one
// tight pass.
//
// It gives exactly json.Unmarshal's answer (checked by FuzzScanEnvelope
// against it): whenever the body needs encoding/json's full semantics — a
// top-level key or one of the four string values with an escape or a
// non-ASCII byte — it falls back to json.Unmarshal.
func scan(body []byte) (envelope, error) {
	s := scanner{b: body}
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		// Not an object: rare, so leave it to encoding/json (which rejects
		// it, or for a bare null leaves the envelope empty).
		return unmarshal(body)
	}
	var env envelope
	s.i++
	s.space()
	if s.peek() == '}' {
		s.i++
		return env, s.end()
	}
	for {
		s.space()
		if s.peek() != '"' {
			return envelope{}, errSyntax
		}
		kStart := s.i + 1
		plain, err := s.str()
		if err != nil {
			return envelope{}, err
		}
		if !plain {
			return unmarshal(body)
		}
		key := s.b[kStart : s.i-1]
		s.space()
		if s.peek() != ':' {
			return envelope{}, errSyntax
		}
		s.i++
		s.space()
		vStart := s.i
		if err := s.value(1); err != nil {
			return envelope{}, err
		}
		raw := s.b[vStart:s.i]
		fb, err := env.set(key, raw)
		switch {
		case err != nil:
			return envelope{}, err
		case fb:
			return unmarshal(body)
		}
		s.space()
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return env, s.end()
		default:
			return envelope{}, errSyntax
		}
	}
}

// errSyntax and errType are the scanner's errors; callers wrap them as they
// would json.Unmarshal's.
var (
	errSyntax = errors.New("invalid JSON")
	errType   = errors.New("envelope field of the wrong JSON type")
)

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

// envelope keys, matched like encoding/json matches struct fields
// (bytes.EqualFold).
var (
	keyID         = []byte("id")
	keyObject     = []byte("object")
	keyType       = []byte("type")
	keyAPIVersion = []byte("api_version")
	keyLivemode   = []byte("livemode")
	keyCreated    = []byte("created")
)

// set stores the raw JSON value of key, as json.Unmarshal would: null leaves
// the field as it is, a later key overwrites an earlier one, a value of the
// wrong type is an error. fallback reports a string that needs unquoting.
func (e *envelope) set(key, raw []byte) (fallback bool, err error) {
	var str *string
	switch {
	case bytes.EqualFold(key, keyID):
		str = &e.ID
	case bytes.EqualFold(key, keyObject):
		str = &e.Object
	case bytes.EqualFold(key, keyType):
		str = &e.Type
	case bytes.EqualFold(key, keyAPIVersion):
		str = &e.APIVersion
	case bytes.EqualFold(key, keyLivemode):
		switch string(raw) {
		case "true":
			e.Livemode = true
		case "false":
			e.Livemode = false
		case "null":
		default:
			return false, errType
		}
		return false, nil
	case bytes.EqualFold(key, keyCreated):
		if string(raw) == "null" {
			return false, nil
		}
		if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
			return false, errType
		}
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil { // a fraction, an exponent or out of range
			return false, errType
		}
		e.Created = n
		return false, nil
	default:
		return false, nil
	}
	switch raw[0] {
	case 'n':
		return false, nil
	case '"':
	default:
		return false, errType
	}
	inner := raw[1 : len(raw)-1]
	for _, c := range inner {
		if c == '\\' || c >= 0x80 {
			return true, nil
		}
	}
	*str = string(inner)
	return false, nil
}

// unmarshal is the encoding/json decode the scanner stands in for.
func unmarshal(body []byte) (envelope, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return envelope{}, err
	}
	return env, nil
}

// scanner walks a JSON text.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) space() {
	b, i := s.b, s.i
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	s.i = i
}

// end accepts only whitespace after the top-level value.
func (s *scanner) end() error {
	s.space()
	if s.i != len(s.b) {
		return errSyntax
	}
	return nil
}

// value skips one JSON value at nesting depth depth (the top-level value is
// at 0, so containers inside it start at 1 more).
func (s *scanner) value(depth int) error {
	switch c := s.peek(); {
	case c == '{' || c == '[':
		return s.container(depth)
	case c == '"':
		_, err := s.str()
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return errSyntax
}

// container skips an object or array and everything in it, iteratively, with
// a stack of the open containers.
func (s *scanner) container(depth int) error {
	var stackBuf [64]byte
	stack := stackBuf[:0]
	for {
		// At the start of a value.
		s.space()
		c := s.peek()
		if c == '{' || c == '[' {
			if depth+len(stack)+1 > maxDepth {
				return errSyntax
			}
			stack = append(stack, c)
			s.i++
			s.space()
			if c == '{' {
				switch s.peek() {
				case '}':
					s.i++
					stack = stack[:len(stack)-1]
					goto after
				case '"':
				default:
					return errSyntax
				}
				if _, err := s.str(); err != nil {
					return err
				}
				s.space()
				if s.peek() != ':' {
					return errSyntax
				}
				s.i++
				continue
			}
			if s.peek() == ']' {
				s.i++
				stack = stack[:len(stack)-1]
				goto after
			}
			continue
		}
		if err := s.value(depth); err != nil {
			return err
		}
	after:
		// After a value: a separator, or the end of containers.
		for {
			if len(stack) == 0 {
				return nil
			}
			s.space()
			top := stack[len(stack)-1]
			switch c := s.peek(); {
			case c == ',':
				s.i++
				if top == '{' {
					s.space()
					if s.peek() != '"' {
						return errSyntax
					}
					if _, err := s.str(); err != nil {
						return err
					}
					s.space()
					if s.peek() != ':' {
						return errSyntax
					}
					s.i++
				}
			case (c == '}' && top == '{') || (c == ']' && top == '['):
				s.i++
				stack = stack[:len(stack)-1]
				continue
			default:
				return errSyntax
			}
			break
		}
	}
}

// str skips a string literal; plain reports that it has no escape and no
// byte outside ASCII (its content is its own text). Most of a Stripe event's
// bytes are inside strings, so the common run of plain characters is a tight
// loop over locals.
func (s *scanner) str() (plain bool, err error) {
	b, i := s.b, s.i+1 // after the opening quote
	plain = true
	for {
		for i < len(b) && b[i] >= 0x20 && b[i] < 0x80 && b[i] != '"' && b[i] != '\\' {
			i++
		}
		if i >= len(b) {
			s.i = i
			return false, errSyntax
		}
		switch c := b[i]; {
		case c == '"':
			s.i = i + 1
			return plain, nil
		case c < 0x20:
			s.i = i
			return false, errSyntax
		case c == '\\':
			plain = false
			i++
			if i >= len(b) {
				s.i = i
				return false, errSyntax
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+4 >= len(b) {
					s.i = i
					return false, errSyntax
				}
				for _, h := range b[i+1 : i+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						s.i = i
						return false, errSyntax
					}
				}
				i += 5
			default:
				s.i = i
				return false, errSyntax
			}
		default: // >= 0x80
			plain = false
			i++
		}
	}
}

// number skips -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() error {
	if s.peek() == '-' {
		s.i++
	}
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case c >= '1' && c <= '9':
		s.digits()
	default:
		return errSyntax
	}
	if s.peek() == '.' {
		s.i++
		if !s.digits() {
			return errSyntax
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if !s.digits() {
			return errSyntax
		}
	}
	return nil
}

func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

func (s *scanner) literal(lit string) error {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return errSyntax
	}
	s.i += len(lit)
	return nil
}
