package edge

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/paystream/paystream/internal/fault"
)

// Request bodies are read into recycled buffers: io.ReadAll grows its buffer
// by doubling from 512 bytes, about 4.9 KB of garbage for a 2.3 KB Stripe
// event, the largest allocation of a request.
const (
	// presizeMax bounds the buffer allocated up front from Content-Length:
	// a client that announces 1 MiB and then stalls must not make the edge
	// hold 1 MiB before a single body byte arrived. A longer body grows as it
	// is read, as it did with io.ReadAll.
	presizeMax = 64 << 10
	// poolMax is the largest buffer put back; a rare large body is left to
	// the garbage collector instead of pinning its size in the pool.
	poolMax = 2 * presizeMax
)

// bodyBuf is a request body read into a buffer from a bodyPool.
type bodyBuf struct{ b []byte }

// bodyPool recycles body buffers between requests.
type bodyPool struct{ p sync.Pool }

func (bp *bodyPool) get() *bodyBuf {
	if v, ok := bp.p.Get().(*bodyBuf); ok {
		return v
	}
	return &bodyBuf{b: make([]byte, 0, 4<<10)}
}

// put returns buf for reuse. The caller must hold no slice of buf.b any more,
// and nothing else may either (see Handler.publish).
func (bp *bodyPool) put(buf *bodyBuf) {
	if buf == nil || cap(buf.b) > poolMax {
		return
	}
	buf.b = buf.b[:0]
	bp.p.Put(buf)
}

// readBody reads the whole body up to limit bytes into a buffer from the
// pool; the caller puts it back once nothing references the bytes. It
// answers exactly as io.ReadAll(http.MaxBytesReader(w, r.Body, limit)) did,
// which TestReadBodyMatchesReadAll checks: a declared Content-Length over
// limit is refused before reading, a body that turns out longer than limit
// (chunked, or a Content-Length that lied) when it passes limit.
func (bp *bodyPool) readBody(w http.ResponseWriter, r *http.Request, limit int64) (*bodyBuf, error) {
	buf := bp.get()
	if r.Body == nil {
		return buf, nil
	}
	if r.ContentLength > limit {
		bp.put(buf)
		return nil, fault.New(fault.TooLarge, ReasonTooLarge, "body is larger than %d bytes", limit)
	}
	// One byte more than announced, so the EOF after a truthful body is seen
	// without growing the buffer.
	if want := min(r.ContentLength, presizeMax) + 1; r.ContentLength > 0 && int64(cap(buf.b)) < want {
		buf.b = make([]byte, 0, want)
	}
	b, err := readAll(http.MaxBytesReader(w, r.Body, limit), buf.b)
	buf.b = b
	if err != nil {
		bp.put(buf)
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, fault.Wrap(err, fault.TooLarge, ReasonTooLarge, fmt.Sprintf("body is larger than %d bytes", limit))
		}
		return nil, fault.Wrap(err, fault.Invalid, ReasonBodyReadError, "could not read the body")
	}
	return buf, nil
}

// readAll is io.ReadAll appending to b.
func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if err == io.EOF {
				return b, nil
			}
			return b, err
		}
	}
}
