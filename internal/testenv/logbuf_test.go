package testenv_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/paystream/paystream/internal/testenv"
)

// Writers on many goroutines and a reader at the same time: every line
// arrives whole (run with -race).
func TestLogBufferTakesConcurrentWrites(t *testing.T) {
	var buf testenv.LogBuffer
	const writers, lines = 8, 200
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range lines {
				if _, err := buf.Write([]byte("one whole line\n")); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for range 10 {
		_ = buf.String()
	}
	wg.Wait()
	if got := strings.Count(buf.String(), "one whole line\n"); got != writers*lines {
		t.Errorf("%d whole lines, want %d", got, writers*lines)
	}
}
