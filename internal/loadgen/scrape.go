package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// scrapeTimeout bounds one read of a local /metrics or profile page.
const scrapeTimeout = 5 * time.Second

// scrape fetches target and returns metricValue of its body for prefix.
func scrape(ctx context.Context, target, prefix string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, scrapeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	v, err := metricValue(resp.Body, prefix)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", target, err)
	}
	return v, nil
}

// metricValue returns the number after prefix on the first line that starts
// with it: an unlabelled metric of a Prometheus text exposition ("name "), or
// the total of a goroutine profile.
func metricValue(r io.Reader, prefix string) (float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, fmt.Errorf("%s%q: %w", prefix, v, err)
			}
			return f, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no line starts with %q", prefix)
}
