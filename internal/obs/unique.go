package obs

import (
	"context"
	"log/slog"
)

// ComponentKey names the part of a process a log line comes from.
const ComponentKey = "component"

// UniqueHandler wraps a slog.Handler so that attributes added with With never
// repeat a key: many log pipelines reject or mangle JSON objects with
// duplicate keys. A repeated ComponentKey is joined into a path
// ("processor/purchase"); any other repeated key keeps its newest value.
//
// It keeps the attributes given since the last group; a With without a
// repeated key costs what it costs the wrapped handler, one with a repeated key
// rebuilds the merged set once, and Handle costs nothing extra.
type UniqueHandler struct {
	base  slog.Handler // the wrapped handler before attrs (and after the last group)
	attrs []slog.Attr  // merged attributes applied on top of base
	h     slog.Handler // base.WithAttrs(attrs)
}

var _ slog.Handler = (*UniqueHandler)(nil)

// NewUniqueHandler wraps h.
func NewUniqueHandler(h slog.Handler) *UniqueHandler {
	return &UniqueHandler{base: h, h: h}
}

// Enabled reports whether the wrapped handler logs at level.
func (u *UniqueHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return u.h.Enabled(ctx, level)
}

// Handle passes r to the wrapped handler.
func (u *UniqueHandler) Handle(ctx context.Context, r slog.Record) error {
	return u.h.Handle(ctx, r)
}

// WithAttrs merges attrs into the handler's attributes without repeating a key.
func (u *UniqueHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return u
	}
	merged := make([]slog.Attr, len(u.attrs), len(u.attrs)+len(attrs))
	copy(merged, u.attrs)
	if !repeats(u.attrs, attrs) {
		// The common case (a per-event logger adding ids): the wrapped
		// handler formats only the new attributes, as without this wrapper.
		return &UniqueHandler{base: u.base, attrs: append(merged, attrs...), h: u.h.WithAttrs(attrs)}
	}
next:
	for _, a := range attrs {
		for i, old := range merged {
			if old.Key != a.Key {
				continue
			}
			if a.Key == ComponentKey {
				a.Value = slog.StringValue(old.Value.String() + "/" + a.Value.String())
			}
			merged[i] = a
			continue next
		}
		merged = append(merged, a)
	}
	return &UniqueHandler{base: u.base, attrs: merged, h: u.base.WithAttrs(merged)}
}

// repeats reports whether a key of attrs is already in have or twice in attrs.
func repeats(have, attrs []slog.Attr) bool {
	for i, a := range attrs {
		for _, h := range have {
			if h.Key == a.Key {
				return true
			}
		}
		for _, b := range attrs[:i] {
			if b.Key == a.Key {
				return true
			}
		}
	}
	return false
}

// WithGroup opens a group; keys inside it are unique among themselves.
func (u *UniqueHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return u
	}
	g := u.h.WithGroup(name)
	return &UniqueHandler{base: g, h: g}
}
