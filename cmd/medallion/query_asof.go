package main

import (
	"context"
	"regexp"
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
	re := regexp.MustCompile(`(?i)(^|[^\w."])"?` + regexp.QuoteMeta(layer) + `"?\s*\.\s*"?` + regexp.QuoteMeta(name) + `"?($|[^\w"])`)
	return re.MatchString(query)
}
