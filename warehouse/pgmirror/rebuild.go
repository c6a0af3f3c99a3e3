package pgmirror

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

// rebuildSuffix names the table a rebuild fills before the swap.
const rebuildSuffix = "_medallion_rebuild"

// privileges PostgreSQL grants on tables (what aclexplode reports).
var tablePrivileges = []string{"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN"}

// rebuild loads the latest version into a new table and swaps it in.
func (a *apply) rebuild(ctx context.Context, existing *pgTable) error {
	spec, tx := a.spec, a.tx
	a.res.Mode = ModeRebuild
	newName := fitName(spec.Table, rebuildSuffix)
	newID := pgx.Identifier{spec.Schema, newName}
	if _, err := tx.Exec(ctx, "DROP TABLE IF EXISTS "+newID.Sanitize()); err != nil {
		return fmt.Errorf("drop leftover %s: %w", newID.Sanitize(), err)
	}
	if err := a.loadNew(ctx, newID, pkName(newName)); err != nil {
		return err
	}
	if existing != nil {
		if err := copyGrants(ctx, tx, spec.ident(), newID); err != nil {
			return err
		}
	}
	// The swap: readers of the old table finish, later ones wait for the
	// commit and then find the new table under the same name.
	if existing != nil {
		if _, err := tx.Exec(ctx, "DROP TABLE "+spec.ident().Sanitize()); err != nil {
			return fmt.Errorf("replace %s (views that depend on it must be dropped first, and created again after): %w", spec.Target(), err)
		}
	}
	if _, err := tx.Exec(ctx, "ALTER TABLE "+newID.Sanitize()+" RENAME TO "+pgx.Identifier{spec.Table}.Sanitize()); err != nil {
		return fmt.Errorf("rename %s to %s: %w", newID.Sanitize(), spec.Target(), err)
	}
	q := fmt.Sprintf("ALTER TABLE %s RENAME CONSTRAINT %s TO %s", spec.ident().Sanitize(),
		pgx.Identifier{pkName(newName)}.Sanitize(), pgx.Identifier{pkName(spec.Table)}.Sanitize())
	if _, err := tx.Exec(ctx, q); err != nil {
		return fmt.Errorf("rename the primary key of %s: %w", spec.Target(), err)
	}
	return nil
}

// copyGrants gives table to the privileges others hold on table from
// (dashboard users keep their SELECT).
func copyGrants(ctx context.Context, tx pgx.Tx, from, to pgx.Identifier) error {
	rows, err := tx.Query(ctx, `SELECT coalesce(r.rolname, ''), a.privilege_type, a.is_grantable
		FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) AS a
		LEFT JOIN pg_roles r ON r.oid = a.grantee
		WHERE c.oid = to_regclass($1) AND a.grantee <> c.relowner`, from.Sanitize())
	if err != nil {
		return fmt.Errorf("read grants of %s: %w", from.Sanitize(), err)
	}
	type grant struct {
		role, priv string
		option     bool
	}
	var grants []grant
	for rows.Next() {
		var g grant
		if err := rows.Scan(&g.role, &g.priv, &g.option); err != nil {
			rows.Close()
			return fmt.Errorf("read grants of %s: %w", from.Sanitize(), err)
		}
		grants = append(grants, g)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read grants of %s: %w", from.Sanitize(), err)
	}
	for _, g := range grants {
		if !slices.Contains(tablePrivileges, g.priv) {
			continue
		}
		who := "PUBLIC"
		if g.role != "" {
			who = pgx.Identifier{g.role}.Sanitize()
		}
		q := "GRANT " + g.priv + " ON TABLE " + to.Sanitize() + " TO " + who
		if g.option {
			q += " WITH GRANT OPTION"
		}
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("copy grant %s to %s: %w", g.priv, who, err)
		}
	}
	return nil
}
