package deploycheck

import (
	"strings"

	dto "github.com/prometheus/client_model/go"
)

// knownMetricNames returns every metric family the paystream processes export,
// by the name it is registered under, with its type (a histogram's series are
// exposed as _bucket, _sum and _count).
//
// This is the agreed list of TEAM.md. It is meant to be replaced by the
// families gathered from the real registries (edge.NewMetrics,
// processor.NewMetrics, purchase.NewMetrics, outbox.NewMetrics on a fresh
// prometheus.Registry each, then Gather: mf.GetName() → mf.GetType()); nothing
// else in this package needs to change then.
func knownMetricNames() map[string]dto.MetricType {
	counter, gauge, histogram := dto.MetricType_COUNTER, dto.MetricType_GAUGE, dto.MetricType_HISTOGRAM
	return map[string]dto.MetricType{
		// edge
		"paystream_edge_requests_total":           counter,
		"paystream_edge_rejections_total":         counter,
		"paystream_edge_published_total":          counter,
		"paystream_edge_publish_duration_seconds": histogram,
		"paystream_edge_request_duration_seconds": histogram,
		"paystream_edge_in_flight_requests":       gauge,
		"paystream_edge_publish_errors_total":     counter,
		// processor runtime
		"paystream_processor_events_total":            counter,
		"paystream_processor_handle_duration_seconds": histogram,
		"paystream_processor_end_to_end_seconds":      histogram,
		"paystream_processor_consumer_pending":        gauge,
		"paystream_processor_consumer_ack_pending":    gauge,
		"paystream_processor_consumer_redelivered":    gauge,
		"paystream_processor_dlq_messages":            gauge,
		"paystream_processor_dead_letters_total":      counter,
		"paystream_processor_in_flight":               gauge,
		"paystream_processor_db_connections":          gauge,
		"paystream_processor_db_wait_seconds_total":   counter,
		// domain
		"paystream_purchases_total":                   counter,
		"paystream_revenue_minor_units_total":         counter,
		"paystream_outbox_backlog":                    gauge,
		"paystream_outbox_published_total":            counter,
		"paystream_outbox_publish_errors_total":       counter,
		"paystream_outbox_oldest_unpublished_seconds": gauge,
	}
}

// prometheusSynthetic are the series Prometheus itself writes for every
// target; queries may use them although no registry exports them.
var prometheusSynthetic = []string{"up", "scrape_duration_seconds", "scrape_samples_scraped"}

// exposedSeriesNames expands metric families into the series names a PromQL
// query can select: a histogram x is queried as x_bucket, x_sum and x_count, a
// summary as x, x_sum and x_count. Prometheus' synthetic series are added.
func exposedSeriesNames(families map[string]dto.MetricType) map[string]bool {
	names := map[string]bool{}
	for name, typ := range families {
		switch typ {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				names[name+suffix] = true
			}
		case dto.MetricType_SUMMARY:
			names[name], names[name+"_sum"], names[name+"_count"] = true, true, true
		default:
			names[name] = true
		}
	}
	for _, n := range prometheusSynthetic {
		names[n] = true
	}
	return names
}

// unknownNames returns the names of used that are not in known, sorted as
// they came, each once.
func unknownNames(used []string, known map[string]bool) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range used {
		if !known[n] && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// isPaystreamName reports whether a series belongs to paystream's namespace.
func isPaystreamName(n string) bool { return strings.HasPrefix(n, "paystream_") }
