package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/medallion-dev/medallion/jobs"
	"github.com/medallion-dev/medallion/lake/delta"
	"github.com/medallion-dev/medallion/layers"
)

// tableSummary is one row of the pipeline page.
type tableSummary struct {
	Table      string    `json:"table"`
	Layer      string    `json:"layer"`
	Exists     bool      `json:"exists"`
	Rows       int64     `json:"rows"`
	RowsKnown  bool      `json:"rows_known"`
	Files      int       `json:"files"`
	SmallFiles int       `json:"small_files"` // below maintenance.target_file_size: what optimize would rewrite
	Bytes      int64     `json:"bytes"`
	Version    int64     `json:"version"`
	LastCommit time.Time `json:"last_commit,omitzero"`
	AgeSeconds float64   `json:"age_seconds"`
	Freshness  string    `json:"freshness"`
}

func summarize(ref layers.TableRef, snap *delta.Snapshot, now time.Time, smallBelow int64) tableSummary {
	s := tableSummary{Table: ref.String(), Layer: string(ref.Layer), Version: -1, Freshness: "not created yet"}
	if snap == nil {
		return s
	}
	s.Exists = true
	s.Rows, s.RowsKnown = snap.NumRecords()
	s.Files = len(snap.Files)
	for _, f := range snap.Files {
		s.Bytes += f.Size
		if f.Size < smallBelow {
			s.SmallFiles++
		}
	}
	s.Version = snap.Version
	s.LastCommit = snap.Timestamp.UTC()
	s.AgeSeconds = now.Sub(snap.Timestamp).Seconds()
	s.Freshness = ago(now, snap.Timestamp)
	return s
}

// summaries reads every table's latest snapshot (in parallel: each is a
// round trip or two on S3).
func (d *Dashboard) summaries(ctx context.Context) ([]tableSummary, error) {
	refs := layers.Tables(d.o.Pipeline)
	out := make([]tableSummary, len(refs))
	now := d.o.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, ref := range refs {
		g.Go(func() error {
			snap, err := d.snaps.get(gctx, ref)
			if err != nil {
				return err
			}
			out[i] = summarize(ref, snap, now, d.o.Pipeline.Maintenance.TargetFileSize)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// lineage is the graph from raw objects to PostgreSQL, laid out in one
// column per layer.
type lineage struct {
	Nodes  []*lineNode `json:"nodes"`
	Edges  []*lineEdge `json:"edges"`
	Width  int         `json:"-"`
	Height int         `json:"-"`
}

type lineNode struct {
	ID     string `json:"id"`
	Layer  string `json:"layer"`
	Label  string `json:"label"`
	Detail string `json:"detail"`
	Href   string `json:"href,omitempty"`
	Rows   *int64 `json:"rows,omitempty"`
	Muted  bool   `json:"muted,omitempty"` // not created yet, or a disabled mirror
	// Quarantined (bronze) and Late (silver) count the node's rows in
	// bronze._quarantine and silver._late; Quality says so in words.
	Quarantined *int64 `json:"quarantined,omitempty"`
	Late        *int64 `json:"late,omitempty"`
	Quality     string `json:"quality,omitempty"`
	// Freshness is "fresh" (a commit in the last 2 minutes), "stale" (none
	// in the last hour) or "" (in between, or not a table).
	Freshness string `json:"freshness,omitempty"`

	X, Y, W, H int  `json:"-"`
	DotX       int  `json:"-"` // where the freshness dot goes
	Bad        bool `json:"-"` // some rows quarantined or late
}

type lineEdge struct {
	From string `json:"from"`
	To   string `json:"to"`
	D    string `json:"-"` // the SVG path
}

// Lineage columns, left to right.
var lineageColumns = []string{"raw", "bronze", "silver", "gold", "postgres"}

const (
	nodeW, nodeH   = 200, 60
	colGap, rowGap = 64, 14
	lineagePad     = 8
)

// tableNode is the lineage box of one table: its rows and freshness, or
// muted when it is not created yet, and its quality line.
func tableNode(ref layers.TableRef, byTable map[string]tableSummary, quarantined, late nodeCounts) *lineNode {
	n := &lineNode{ID: ref.String(), Layer: string(ref.Layer), Label: ref.String(), Href: "/tables/" + ref.String()}
	t, ok := byTable[ref.String()]
	switch {
	case !ok || !t.Exists:
		n.Detail, n.Muted = "not created yet", true
	case t.RowsKnown:
		rows := t.Rows
		n.Rows = &rows
		n.Detail = groupDigits(t.Rows) + " rows · " + t.Freshness
	default:
		n.Detail = "? rows · " + t.Freshness
	}
	if ok && t.Exists {
		n.Freshness = freshnessClass(t.AgeSeconds)
	}
	nodeQualityLine(n, ref, quarantined, late)
	return n
}

// lineage is the pipeline page's graph: raw sources, the bronze, silver and
// gold tables and the PostgreSQL mirrors, with an edge per dependency.
func (d *Dashboard) lineage(tables []tableSummary, quarantined, late nodeCounts) (*lineage, error) {
	p := d.o.Pipeline
	byTable := map[string]tableSummary{}
	for _, t := range tables {
		byTable[t.Table] = t
	}
	lg := &lineage{}
	index := map[string]*lineNode{}
	add := func(n *lineNode) *lineNode {
		if old := index[n.ID]; old != nil {
			return old
		}
		index[n.ID] = n
		lg.Nodes = append(lg.Nodes, n)
		return n
	}
	table := func(ref layers.TableRef) *lineNode {
		return add(tableNode(ref, byTable, quarantined, late))
	}
	edge := func(from, to string) {
		for _, e := range lg.Edges {
			if e.From == from && e.To == to {
				return
			}
		}
		lg.Edges = append(lg.Edges, &lineEdge{From: from, To: to})
	}
	for _, name := range p.SourceOrder {
		src := p.Sources[name]
		rawID := "raw." + name
		detail := src.Format + " objects"
		if src.Broker != nil {
			detail = src.Format + " from " + src.Broker.Kind
		}
		add(&lineNode{ID: rawID, Layer: "raw", Label: rawID, Detail: detail})
		b := table(layers.TableRef{Layer: layers.Bronze, Name: name})
		edge(rawID, b.ID)
	}
	plan, err := jobs.Plan(p, nil)
	if err != nil {
		return nil, fmt.Errorf("lineage: %w", err)
	}
	for _, j := range plan {
		switch j.Table.Layer {
		case layers.Silver, layers.Gold:
		default:
			continue
		}
		to := table(j.Table)
		for _, dep := range j.Deps {
			edge(table(dep).ID, to.ID)
		}
	}
	for _, m := range p.Mirror {
		ref, err := layers.ParseTableRef(m.Table, "")
		if err != nil {
			continue // the loader refused it already
		}
		n := add(&lineNode{ID: "postgres." + m.To, Layer: "postgres", Label: "postgres." + m.To, Detail: "mirror, key " + strings.Join(m.Key, ", ")})
		if p.Postgres == "" {
			n.Detail, n.Muted = "disabled: postgres not set", true
		}
		edge(table(ref).ID, n.ID)
	}
	lg.layout()
	return lg, nil
}

// layout places the nodes in their layer's column, centred vertically, and
// draws each edge as a curve from the right side of one box to the left of
// the next (or around the right side, within a column).
func (lg *lineage) layout() {
	cols := make([][]*lineNode, len(lineageColumns))
	for _, n := range lg.Nodes {
		for i, c := range lineageColumns {
			if n.Layer == c {
				cols[i] = append(cols[i], n)
			}
		}
	}
	tallest := 1
	for _, c := range cols {
		tallest = max(tallest, len(c))
	}
	lg.Height = 2*lineagePad + tallest*nodeH + (tallest-1)*rowGap
	// Each column is as wide as its longest name or detail, so names are
	// shown whole: the page scrolls sideways before a name is cut.
	x := lineagePad
	for _, c := range cols {
		if len(c) == 0 {
			continue // a layer the pipeline does not use takes no room
		}
		w := nodeW
		for _, n := range c {
			w = max(w, nodeWidth(n))
		}
		h := len(c)*nodeH + max(len(c)-1, 0)*rowGap
		top := (lg.Height - h) / 2
		for j, n := range c {
			n.X = x
			n.Y = top + j*(nodeH+rowGap)
			n.W, n.H = w, nodeH
			n.DotX = w - 10
		}
		x += w + colGap
	}
	lg.Width = max(x-colGap+lineagePad+40, 2*lineagePad+nodeW) // room for loops on the right
	pos := map[string]*lineNode{}
	for _, n := range lg.Nodes {
		pos[n.ID] = n
	}
	for _, e := range lg.Edges {
		a, b := pos[e.From], pos[e.To]
		ay, by := a.Y+a.H/2, b.Y+b.H/2
		if a.X == b.X { // same column: loop around the right side
			x := a.X + a.W
			e.D = fmt.Sprintf("M%d %d C%d %d %d %d %d %d", x, ay, x+36, ay, x+36, by, x, by)
			continue
		}
		x1, x2 := a.X+a.W, b.X
		mid := (x1 + x2) / 2
		e.D = fmt.Sprintf("M%d %d C%d %d %d %d %d %d", x1, ay, mid, ay, mid, by, x2-4, by)
	}
}

// nodeWidth is the box a node's texts need: the label is 12px monospace
// (7.3 units a character), the other lines 11px sans (about 6.3).
func nodeWidth(n *lineNode) int {
	w := 12 + 7.3*float64(len([]rune(n.Label)))
	for _, s := range []string{n.Detail, n.Quality} {
		w = max(w, 12+6.3*float64(len([]rune(s))))
	}
	return int(w) + 20 // the left stripe's margin and the freshness dot
}

// nodeQualityLine sets a table node's quarantined (bronze) or late
// (silver) rows. The quarantine and late tables themselves count nothing.
func nodeQualityLine(n *lineNode, ref layers.TableRef, quarantined, late nodeCounts) {
	if ref == layers.Quarantine() || ref == layers.Late() {
		return
	}
	switch ref.Layer {
	case layers.Bronze:
		q := quarantined[ref.String()]
		n.Quarantined, n.Quality, n.Bad = &q, groupDigits(q)+" quarantined", q > 0
	case layers.Silver:
		l := late[ref.String()]
		n.Late, n.Quality, n.Bad = &l, groupDigits(l)+" late", l > 0
	}
}

// freshnessClass matches the freshness column of the tables list.
func freshnessClass(age float64) string {
	switch {
	case age > 3600:
		return "stale"
	case age < 120:
		return "fresh"
	}
	return ""
}

// pipelinePage is the data of /.
type pipelinePage struct {
	Tables  []tableSummary `json:"tables"`
	Lineage *lineage       `json:"lineage"`
}

func (p pipelinePage) title() string { return "Pipeline" }

func (d *Dashboard) pipelineData(ctx context.Context) (pipelinePage, error) {
	tables, err := d.summaries(ctx)
	if err != nil {
		return pipelinePage{}, err
	}
	quarantined, late, err := d.nodeQuality(ctx)
	if err != nil {
		return pipelinePage{}, err
	}
	lg, err := d.lineage(tables, quarantined, late)
	if err != nil {
		return pipelinePage{}, err
	}
	return pipelinePage{Tables: tables, Lineage: lg}, nil
}

func (d *Dashboard) servePipeline(w http.ResponseWriter, r *http.Request) {
	data, err := d.pipelineData(r.Context())
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, "pipeline.html", data)
}

func (d *Dashboard) apiPipeline(w http.ResponseWriter, r *http.Request) {
	data, err := d.pipelineData(r.Context())
	if err != nil {
		d.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, data)
}
