package deploycheck

import (
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/paystream/paystream/internal/api"
	"github.com/paystream/paystream/internal/edge"
	"github.com/paystream/paystream/internal/obs"
	"github.com/paystream/paystream/internal/outbox"
	"github.com/paystream/paystream/internal/payout"
	"github.com/paystream/paystream/internal/processor"
	"github.com/paystream/paystream/internal/purchase"
	"github.com/paystream/paystream/internal/reconcile"
	"github.com/paystream/paystream/internal/subscription"
)

// exporter is one constructor that registers paystream series on the
// registry of the process that runs it.
type exporter struct {
	name     string
	register func(prometheus.Registerer) error
}

// exporters are the real metric constructors of every paystream process. A
// new constructor belongs here, or its series cannot be used on the
// dashboard or in alerts.
func exporters() []exporter {
	return []exporter{
		{"edge", func(r prometheus.Registerer) error { edge.NewMetrics(r); return nil }},
		{"api", func(r prometheus.Registerer) error { api.NewMetrics(r); return nil }},
		{"processor", func(r prometheus.Registerer) error {
			processor.NewMetrics(r)
			// The pool collector reads the stats at scrape time; zero
			// stats export every series all the same.
			return processor.RegisterDBStats(r, func() sql.DBStats { return sql.DBStats{} })
		}},
		{"purchase", func(r prometheus.Registerer) error { purchase.NewMetrics(r); return nil }},
		{"outbox", func(r prometheus.Registerer) error { outbox.NewMetrics(r); return nil }},
		{"reconcile", func(r prometheus.Registerer) error { reconcile.NewMetrics(r); return nil }},
		{"payout", func(r prometheus.Registerer) error { payout.NewMetrics(r); return nil }},
		{"subscription", func(r prometheus.Registerer) error { subscription.NewMetrics(r); return nil }},
	}
}

// family is what the checks know of one exported metric family.
type family struct {
	Type   dto.MetricType
	Labels []string // label names of its series (without le/quantile), sorted
}

// knownFamilies returns every metric family the paystream processes export:
// the families of each exporter gathered from a fresh registry, plus the Go
// runtime and process collectors every process registry has
// (obs.NewRegistry). It panics when a constructor cannot be gathered, which
// only a broken constructor causes; tests report the panic.
func knownFamilies() map[string]family {
	known := map[string]family{}
	for _, e := range exporters() {
		fams, err := gatherFamilies(e.register)
		if err != nil {
			panic(fmt.Sprintf("gather %s metrics: %v", e.name, err))
		}
		for n, f := range fams {
			known[n] = f
		}
	}
	mfs, err := obs.NewRegistry().Gather()
	if err != nil {
		panic(fmt.Sprintf("gather obs.NewRegistry: %v", err))
	}
	for _, mf := range mfs {
		known[mf.GetName()] = toFamily(mf)
	}
	return known
}

// knownMetricNames returns every exported metric family by name with its
// type (a histogram's series are exposed as _bucket, _sum and _count).
func knownMetricNames() map[string]dto.MetricType {
	names := map[string]dto.MetricType{}
	for n, f := range knownFamilies() {
		names[n] = f.Type
	}
	return names
}

// toFamily reads the type and the label names of a gathered family.
func toFamily(mf *dto.MetricFamily) family {
	f := family{Type: mf.GetType()}
	for _, m := range mf.GetMetric() {
		for _, lp := range m.GetLabel() {
			if !slices.Contains(f.Labels, lp.GetName()) {
				f.Labels = append(f.Labels, lp.GetName())
			}
		}
	}
	slices.Sort(f.Labels)
	return f
}

// gatherFamilies runs register on a fresh registry and returns the metric
// families it registered with their types and label names.
//
// Gather omits a vector with no children, and a constructor usually creates
// its vectors empty. So every registered collector is first described (the
// complete list of names), every vector gets one child (found by trying label
// value counts, which needs no knowledge of its labels), and then the
// registry is gathered for the types. A described name that still does not
// come out of Gather is an error rather than a silent gap.
func gatherFamilies(register func(prometheus.Registerer) error) (map[string]family, error) {
	rec := &recordingRegisterer{reg: prometheus.NewRegistry()}
	if err := register(rec); err != nil {
		return nil, err
	}
	var described []string
	for _, c := range rec.collectors {
		names, err := describedNames(c)
		if err != nil {
			return nil, err
		}
		described = append(described, names...)
		if err := touchVector(c); err != nil {
			return nil, err
		}
	}
	mfs, err := rec.reg.Gather()
	if err != nil {
		return nil, fmt.Errorf("gather: %w", err)
	}
	fams := map[string]family{}
	for _, mf := range mfs {
		fams[mf.GetName()] = toFamily(mf)
	}
	var missing []string
	for _, n := range described {
		if _, ok := fams[n]; !ok {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("described but not gathered (a collector type the check cannot instantiate?): %s",
			strings.Join(missing, ", "))
	}
	return fams, nil
}

// recordingRegisterer registers on a real registry (so duplicate and
// inconsistent registrations fail as in production) and remembers the
// collectors.
type recordingRegisterer struct {
	reg        *prometheus.Registry
	collectors []prometheus.Collector
}

var _ prometheus.Registerer = (*recordingRegisterer)(nil)

// Register implements prometheus.Registerer.
func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	if err := r.reg.Register(c); err != nil {
		return err
	}
	r.collectors = append(r.collectors, c)
	return nil
}

// MustRegister implements prometheus.Registerer; like the registry's, it
// panics on a registration error.
func (r *recordingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// Unregister implements prometheus.Registerer.
func (r *recordingRegisterer) Unregister(c prometheus.Collector) bool {
	r.collectors = slices.DeleteFunc(r.collectors, func(x prometheus.Collector) bool { return x == c })
	return r.reg.Unregister(c)
}

// descFQName reads the fully-qualified name out of Desc.String(), the only
// place client_golang exposes it: `Desc{fqName: "<name>", help: …}`. The
// name is %q-quoted there, so it is unquoted rather than cut at a quote.
var descFQName = regexp.MustCompile(`^Desc\{fqName: ("(?:[^"\\]|\\.)*")`)

// describedNames returns the metric names c describes.
func describedNames(c prometheus.Collector) ([]string, error) {
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	var names []string
	var errs []error
	for d := range ch {
		m := descFQName.FindStringSubmatch(d.String())
		if m == nil {
			errs = append(errs, fmt.Errorf("cannot read the name of %s", d))
			continue
		}
		name, err := strconv.Unquote(m[1])
		if err != nil {
			errs = append(errs, fmt.Errorf("cannot unquote the name of %s: %w", d, err))
			continue
		}
		names = append(names, name)
	}
	return names, errors.Join(errs...)
}

// maxVectorLabels bounds the label-count search of touchVector; no paystream
// vector comes near it.
const maxVectorLabels = 16

// touchVector creates one child of c if c is a metric vector, so that Gather
// reports the family. It tries 0, 1, 2, … label values until the vector
// accepts the count: GetMetricWithLabelValues refuses a wrong count with an
// error and creates nothing.
func touchVector(c prometheus.Collector) error {
	var vec *prometheus.MetricVec
	switch v := c.(type) {
	case *prometheus.CounterVec:
		vec = v.MetricVec
	case *prometheus.GaugeVec:
		vec = v.MetricVec
	case *prometheus.HistogramVec:
		vec = v.MetricVec
	case *prometheus.SummaryVec:
		vec = v.MetricVec
	default:
		return nil // a plain metric or a custom collector: Gather already sees it
	}
	for n := 0; n <= maxVectorLabels; n++ {
		if _, err := vec.GetMetricWithLabelValues(slices.Repeat([]string{"x"}, n)...); err == nil {
			return nil
		}
	}
	return fmt.Errorf("vector %v accepts no label count up to %d", c, maxVectorLabels)
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
