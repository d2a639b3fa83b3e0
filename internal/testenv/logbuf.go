package testenv

import (
	"bytes"
	"sync"
)

// LogBuffer collects what concurrent writers write — a logger shared by
// request handlers, a server's goroutines, a program's stdout — so a test
// can read it while they run. The zero value is ready to use; use it by
// pointer.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p; it is safe from any goroutine.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
