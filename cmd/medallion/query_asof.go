package main

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/medallion-dev/medallion/warehouse"
)

// attachAsOf attaches every table, the ones query names as of asOf and the
// others at their latest version: versions differ per table, so a version
// applied to a table the query never reads would fail for nothing.
func attachAsOf(ctx context.Context, ws *workspace, refs []warehouse.TableRef, query string, asOf warehouse.AsOf) (*warehouse.Catalog, error) {
	if asOf.IsLatest() {
		return warehouse.AttachCatalog(ctx, ws.eng, ws.store, ws.cache, refs, asOf)
	}
	var named, others []warehouse.TableRef
	for _, r := range refs {
		if namesTable(query, r.String()) {
			named = append(named, r)
		} else {
			others = append(others, r)
		}
	}
	cat, err := warehouse.AttachCatalog(ctx, ws.eng, ws.store, ws.cache, named, asOf)
	if err != nil {
		return nil, err
	}
	rest, err := warehouse.AttachCatalog(ctx, ws.eng, ws.store, ws.cache, others, warehouse.Latest())
	if err != nil {
		return nil, err
	}
	cat.Tables = append(cat.Tables, rest.Tables...)
	return cat, nil
}

// namesTable reports whether query mentions the table layer.name, quoted
// or not, in any case, with spaces around the dot or not.
func namesTable(query, table string) bool {
	layer, name, _ := strings.Cut(table, ".")
	re := regexp.MustCompile(`(?i)(^|[^\w."])"?` + regexp.QuoteMeta(layer) + `"?\s*\.\s*"?` + regexp.QuoteMeta(name) + `"?($|[^\w"@])`)
	return re.MatchString(query)
}

// atClause is a table named with DuckDB's time-travel clause:
// bronze.meters AT (VERSION => 3), gold.x AT (TIMESTAMP => TIMESTAMP '2026-01-01 00:00:00').
var atClause = regexp.MustCompile(`(?i)"?\b(bronze|silver|gold)"?\s*\.\s*"?(\w+)"?\s+AT\s*\(\s*(VERSION|TIMESTAMP)\s*=>\s*(\d+|(?:TIMESTAMP\s*)?'[^']*')\s*\)`)

// pin is one table read at one version or time, under its own view name.
type pin struct {
	ref   warehouse.TableRef
	asOf  warehouse.AsOf
	alias string // the view's name in the table's schema: meters@v3
}

// rewriteAt replaces every "TABLE AT (VERSION => n)" or "AT (TIMESTAMP =>
// ...)" of query with a view of its own, and returns the views to attach.
func rewriteAt(query string) (string, []pin, error) {
	seen := map[string]bool{}
	var pins []pin
	var bad error
	out := atClause.ReplaceAllStringFunc(query, func(m string) string {
		g := atClause.FindStringSubmatch(m)
		ref := warehouse.TableRef{Schema: strings.ToLower(g[1]), Name: g[2]}
		val := strings.TrimSpace(g[4])
		if len(val) > 9 && strings.EqualFold(val[:9], "TIMESTAMP") {
			val = strings.TrimSpace(val[9:])
		}
		val = strings.Trim(val, "'")
		asOf, err := warehouse.ParseAsOf(val)
		if err != nil || strings.EqualFold(g[3], "VERSION") != asOf.HasVersion {
			bad = fmt.Errorf("%s: want AT (VERSION => 3) or AT (TIMESTAMP => TIMESTAMP '2026-01-01 00:00:00')", m)
			return m
		}
		alias := ref.Name + "@v" + asOf.String()
		if !asOf.HasVersion {
			// No '.': the read-only check would take it for a file name.
			alias = fmt.Sprintf("%s@t%s%09d", ref.Name, asOf.Time.Format("20060102T150405"), asOf.Time.Nanosecond())
		}
		if !seen[ref.Schema+"."+alias] {
			seen[ref.Schema+"."+alias] = true
			pins = append(pins, pin{ref: ref, asOf: asOf, alias: alias})
		}
		return ref.Schema + "." + warehouse.QuoteIdent(alias)
	})
	return out, pins, bad
}

// attachPins attaches each pinned table at its version under its alias.
func attachPins(ctx context.Context, ws *workspace, known []warehouse.TableRef, pins []pin) (*warehouse.Catalog, error) {
	cat := &warehouse.Catalog{}
	for _, p := range pins {
		if !slices.Contains(known, p.ref) {
			return nil, fmt.Errorf("unknown table %s in its AT clause (`medallion tables` lists them)", p.ref)
		}
		c, err := warehouse.AttachCatalog(ctx, ws.eng, ws.store, ws.cache, []warehouse.TableRef{p.ref}, p.asOf)
		if err != nil {
			return nil, err
		}
		if len(c.Tables) == 0 {
			return nil, fmt.Errorf("table %s has no commits yet: run `medallion run` first", p.ref)
		}
		rename := fmt.Sprintf("ALTER VIEW %s.%s RENAME TO %s", warehouse.QuoteIdent(p.ref.Schema), warehouse.QuoteIdent(p.ref.Name), warehouse.QuoteIdent(p.alias))
		if _, err := ws.eng.DB().ExecContext(ctx, rename); err != nil {
			return nil, fmt.Errorf("attach %s as of %s: %w", p.ref, p.asOf, err)
		}
		cat.Tables = append(cat.Tables, c.Tables...)
	}
	return cat, nil
}
