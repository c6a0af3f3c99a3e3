package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/medallion-dev/medallion/internal/randid"
	"log/slog"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.yaml.in/yaml/v3"

	"github.com/medallion-dev/medallion/internal/generate"
	"github.com/medallion-dev/medallion/internal/testenv"
	"github.com/medallion-dev/medallion/jobs"
	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/layers/raw"
	"github.com/medallion-dev/medallion/warehouse"
)

const grafanaDir = "compose/grafana/provisioning"

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name       string     `json:"name"`
			Type       string     `json:"type"`
			Query      any        `json:"query"` // a string for SQL datasources
			Datasource datasource `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		Title      string     `json:"title"`
		Type       string     `json:"type"`
		Datasource datasource `json:"datasource"`
		Targets    []struct {
			RefID    string `json:"refId"`
			RawQuery bool   `json:"rawQuery"`
			RawSQL   string `json:"rawSql"`
		} `json:"targets"`
	} `json:"panels"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// panelQuery is one SQL query of the dashboard, named for messages.
type panelQuery struct {
	Name       string
	SQL        string
	MayBeEmpty bool // the data may legitimately have no row for it
}

// loadGrafana reads the provisioned datasource and every dashboard, and
// checks that each panel and variable uses that datasource. It returns
// the dashboards' queries and their template variable names.
func loadGrafana(t *testing.T) ([]panelQuery, []string) {
	t.Helper()
	var ds struct {
		Datasources []struct {
			Name     string `yaml:"name"`
			Type     string `yaml:"type"`
			UID      string `yaml:"uid"`
			URL      string `yaml:"url"`
			JSONData struct {
				Database string `yaml:"database"`
			} `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	dsFile := filepath.Join(grafanaDir, "datasources", "medallion.yaml")
	if err := yaml.Unmarshal(readFile(t, dsFile), &ds); err != nil {
		t.Fatalf("%s: %v", dsFile, err)
	}
	if len(ds.Datasources) != 1 {
		t.Fatalf("%s: %d datasources, want 1", dsFile, len(ds.Datasources))
	}
	pg := ds.Datasources[0]
	c := loadCompose(t)
	if host, _, _ := strings.Cut(pg.URL, ":"); c.Services[host] == nil {
		t.Errorf("%s: url %q is not a compose service", dsFile, pg.URL)
	}
	if want := c.Services["postgres"].Environment["POSTGRES_DB"]; pg.JSONData.Database != want {
		t.Errorf("%s: database %q, the postgres service creates %q", dsFile, pg.JSONData.Database, want)
	}

	// The dashboard provider's folder is mounted into Grafana and holds the dashboards.
	var prov struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	provFile := filepath.Join(grafanaDir, "dashboards", "medallion.yaml")
	if err := yaml.Unmarshal(readFile(t, provFile), &prov); err != nil || len(prov.Providers) != 1 {
		t.Fatalf("%s: %v (%d providers)", provFile, err, len(prov.Providers))
	}
	hostDir := ""
	for _, v := range c.Services["grafana"].Volumes {
		m := parseMount(v)
		if rel, ok := strings.CutPrefix(prov.Providers[0].Options.Path, m.Target); ok && m.bind() {
			hostDir = filepath.Join(composePath(m.Host), rel)
		}
	}
	if hostDir == "" {
		t.Fatalf("%s: path %s is not mounted into the grafana service", provFile, prov.Providers[0].Options.Path)
	}
	files, _ := filepath.Glob(filepath.Join(hostDir, "*.json"))
	if len(files) == 0 {
		t.Fatalf("no dashboard JSON in %s, the provider's folder", hostDir)
	}

	var queries []panelQuery
	var vars []string
	for _, f := range files {
		var d dashboard
		if err := json.Unmarshal(readFile(t, f), &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if d.UID == "" || len(d.Panels) == 0 {
			t.Errorf("%s: no uid or no panels", f)
		}
		for _, v := range d.Templating.List {
			vars = append(vars, v.Name)
			if v.Type != "query" {
				continue
			}
			if v.Datasource.UID != pg.UID {
				t.Errorf("%s: variable %s uses datasource %q, not %q", f, v.Name, v.Datasource.UID, pg.UID)
			}
			q, _ := v.Query.(string)
			queries = append(queries, panelQuery{Name: path.Base(f) + ": variable " + v.Name, SQL: q})
		}
		for _, p := range d.Panels {
			if p.Datasource.UID != pg.UID || p.Datasource.Type != pg.Type {
				t.Errorf("%s: panel %q uses datasource %+v, not %s %q", f, p.Title, p.Datasource, pg.Type, pg.UID)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", f, p.Title)
			}
			for _, tg := range p.Targets {
				if !tg.RawQuery || strings.TrimSpace(tg.RawSQL) == "" {
					t.Errorf("%s: panel %q target %s has no raw SQL", f, p.Title, tg.RefID)
				}
				queries = append(queries, panelQuery{
					Name: fmt.Sprintf("%s: panel %q (%s)", path.Base(f), p.Title, tg.RefID), SQL: tg.RawSQL,
					MayBeEmpty: strings.HasPrefix(p.Title, "Spikes"),
				})
			}
		}
	}
	return queries, vars
}

func TestGrafanaProvisioning(t *testing.T) {
	queries, _ := loadGrafana(t)
	for _, q := range queries {
		t.Logf("%s: %s", q.Name, q.SQL)
	}
}

// Grafana's PostgreSQL macros, replaced by SQL PostgreSQL can plan. The
// column a macro names is kept (and type-checked as a timestamp), so a
// wrong column inside a macro still fails.
var macros = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`\$__timeFilter\(\s*([^)]+?)\s*\)`), "($1 BETWEEN now() - interval '100 years' AND now() + interval '100 years')"},
	{regexp.MustCompile(`\$__timeGroupAlias\(\s*([^,)]+?)\s*,[^)]*\)`), "date_trunc('minute', $1) AS time"},
	{regexp.MustCompile(`\$__timeGroup\(\s*([^,)]+?)\s*,[^)]*\)`), "date_trunc('minute', $1)"},
	{regexp.MustCompile(`\$__time\(\s*([^)]+?)\s*\)`), "$1 AS time"},
	{regexp.MustCompile(`\$__timeFrom\(\)`), "now()"},
	{regexp.MustCompile(`\$__timeTo\(\)`), "now()"},
	{regexp.MustCompile(`\$__unixEpochFilter\(\s*([^)]+?)\s*\)`), "($1 > 0)"},
}

// grafanaSQL turns a dashboard query into plain SQL: macros replaced as
// above, template variables ($v, ${v}, ${v:fmt}, [[v]]) by a literal.
func grafanaSQL(q string, vars []string, literal string) (string, error) {
	for _, m := range macros {
		q = m.re.ReplaceAllString(q, m.repl)
	}
	for _, v := range vars {
		re := regexp.MustCompile(`\$\{` + regexp.QuoteMeta(v) + `(:[a-z]+)?\}|\[\[` + regexp.QuoteMeta(v) + `\]\]|\$` + regexp.QuoteMeta(v) + `\b`)
		q = re.ReplaceAllLiteralString(q, literal)
	}
	if m := regexp.MustCompile(`\$\{?[A-Za-z_][A-Za-z0-9_]*`).FindString(q); m != "" {
		return "", fmt.Errorf("%s: a Grafana macro or variable the test does not know: add it to macros in grafana_test.go", m)
	}
	return q, nil
}

func TestGrafanaSQL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"SELECT a FROM t WHERE $__timeFilter(ts) AND m IN ($meter)",
			"SELECT a FROM t WHERE (ts BETWEEN now() - interval '100 years' AND now() + interval '100 years') AND m IN ('x')"},
		{"SELECT $__timeGroupAlias(window_start, 1m), sum(x) FROM t GROUP BY 1",
			"SELECT date_trunc('minute', window_start) AS time, sum(x) FROM t GROUP BY 1"},
		{"SELECT * FROM t WHERE ts > $__timeFrom() AND ts < $__timeTo() AND m = ${meter:sqlstring} OR m = [[meter]]",
			"SELECT * FROM t WHERE ts > now() AND ts < now() AND m = 'x' OR m = 'x'"},
		{"SELECT $meters FROM t", ""},
	} {
		got, err := grafanaSQL(tc.in, []string{"meter"}, "'x'")
		if tc.want == "" {
			if err == nil {
				t.Errorf("grafanaSQL(%q) = %q, want an error for an unknown variable", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("grafanaSQL(%q) = %q, %v\nwant %q", tc.in, got, err, tc.want)
		}
	}
}

// TestGrafanaQueriesAgainstMirror builds the example pipeline on a local
// lake from generated energy readings, mirrors it into a schema of its own
// in the real PostgreSQL, and runs every dashboard query there: EXPLAIN
// first, so a missing table or column fails with PostgreSQL's message and
// the panel's name, then the query itself.
func TestGrafanaQueriesAgainstMirror(t *testing.T) {
	queries, vars := loadGrafana(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dsn := testenv.PostgresURL(t)
	schema := "deploy_test_" + randid.Hex(6)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	t.Cleanup(func() { // runs before the Close above

		if _, err := conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})

	buildExample(ctx, t, dsn, schema)

	if _, err := conn.Exec(ctx, "SET search_path TO "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	for _, q := range queries {
		sql, err := grafanaSQL(q.SQL, vars, "'meter-001'")
		if err != nil {
			t.Errorf("%s: %v", q.Name, err)
			continue
		}
		if _, err := conn.Exec(ctx, "EXPLAIN "+sql); err != nil {
			t.Errorf("%s does not plan against the mirror of %s: %v\nSQL: %s", q.Name, pipelineFile, err, sql)
			continue
		}
		rows, err := conn.Query(ctx, sql)
		if err != nil {
			t.Errorf("%s: %v", q.Name, err)
			continue
		}
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Err(); err != nil {
			t.Errorf("%s: %v", q.Name, err)
		}
		if n == 0 && !q.MayBeEmpty {
			t.Errorf("%s returned no row on the generated data\nSQL: %s", q.Name, sql)
		}
		t.Logf("%s: %d rows", q.Name, n)
	}
}

// buildExample runs deploy/medallion.yaml once, as `medallion run` does:
// 10 minutes of generated readings from 8 meters landed in a local lake,
// bronze -> silver -> gold -> mirror into PostgreSQL schema (instead of
// public).
func buildExample(ctx context.Context, t *testing.T, dsn, schema string) {
	t.Helper()
	lakeDir := t.TempDir()
	env := map[string]string{
		"MEDALLION_LAKE": lakeDir, "S3_ACCESS_KEY": "unused", "S3_SECRET_KEY": "unused",
		"DATABASE_URL": dsn, "MEDALLION_DUCKDB_MEMORY_LIMIT": "512MB", "MEDALLION_DUCKDB_THREADS": "2",
	}
	p, err := parsePipeline(pipelineFile, readFile(t, pipelineFile), env)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range p.Mirror {
		_, table, ok := strings.Cut(m.To, ".")
		if !ok {
			table = m.To
		}
		m.To = schema + "." + table
	}
	st, err := lake.Open(ctx, p.Lake, lake.S3Options{})
	if err != nil {
		t.Fatal(err)
	}
	var data bytes.Buffer
	if _, err := generate.Write(ctx, &data, generate.Options{Kind: generate.Energy, Rows: 8 * 600, Seed: 7}); err != nil {
		t.Fatalf("generate: %v", err)
	}
	for _, name := range p.SourceOrder {
		if _, _, err := raw.Land(ctx, st, name, "energy.ndjson", p.Sources[name].Format, &data, time.Now()); err != nil {
			t.Fatalf("land %s: %v", name, err)
		}
	}
	eng, err := warehouse.Open(ctx, warehouse.Options{MemoryLimit: p.DuckDB.MemoryLimit, Threads: p.DuckDB.Threads, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	plan, err := jobs.Plan(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &jobs.Runner{Store: st, Pipeline: p, Engine: eng, Cache: &lake.Cache{Dir: t.TempDir()}, Log: slog.New(slog.DiscardHandler)}
	results, err := r.Run(ctx, plan, nil)
	for _, res := range results {
		t.Logf("%s", res.Summary)
	}
	if err != nil {
		t.Fatalf("run %s: %v", pipelineFile, err)
	}
}
