package warehouse

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// formatQuery has every kind of value an analyst meets: integers, doubles,
// decimals, text needing CSV quoting, NULLs, booleans, timestamps and dates.
const formatQuery = `SELECT * FROM (VALUES
  (1, 'm1', 1.5::DOUBLE, 12.50::DECIMAL(10,2), TIMESTAMPTZ '2024-05-01 10:00:00+02', DATE '2024-05-01', true),
  (22, 'say "hi", twice', NULL, -0.05::DECIMAL(10,2), NULL, NULL, false),
  (-333, NULL, 1e20::DOUBLE, NULL, TIMESTAMPTZ '2024-05-01 23:59:59.123456+00', DATE '2024-12-31', NULL)
) AS t(id, name, usage, amount, ts, day, ok) ORDER BY id`

func TestFormatsGolden(t *testing.T) {
	ctx := context.Background()
	eng, err := Open(ctx, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if err := LockDown(ctx, eng, nil); err != nil {
		t.Fatal(err)
	}
	for _, f := range []Format{FormatTable, FormatCSV, FormatJSON, FormatNDJSON} {
		t.Run(string(f), func(t *testing.T) {
			var b bytes.Buffer
			n, err := eng.Query(ctx, formatQuery, f, &b)
			if err != nil {
				t.Fatal(err)
			}
			if n != 3 {
				t.Errorf("rows = %d, want 3", n)
			}
			golden(t, filepath.Join("testdata", "format", string(f)+".golden"), b.Bytes())
		})
	}
	t.Run("empty", func(t *testing.T) {
		var b bytes.Buffer
		if _, err := eng.Query(ctx, "SELECT 1 AS a WHERE false", FormatTable, &b); err != nil {
			t.Fatal(err)
		}
		if want := "a\n-\n(0 rows)\n"; b.String() != want {
			t.Errorf("empty table: %q, want %q", b.String(), want)
		}
		b.Reset()
		if _, err := eng.Query(ctx, "SELECT 1 AS a WHERE false", FormatJSON, &b); err != nil {
			t.Fatal(err)
		}
		if want := "[]\n"; b.String() != want {
			t.Errorf("empty json: %q, want %q", b.String(), want)
		}
	})
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestWriteParquet(t *testing.T) {
	ctx := context.Background()
	eng, err := Open(ctx, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if err := LockDown(ctx, eng, nil); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "result.parquet")
	n, err := eng.WriteParquet(ctx, formatQuery+"; -- trailing", out)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("rows = %d, want 3", n)
	}
	// The user's SQL still passes the guard on the parquet path.
	if _, err := eng.WriteParquet(ctx, "SELECT * FROM read_csv('/etc/passwd')", out+"2"); err == nil {
		t.Errorf("WriteParquet ran a refused query")
	}

	// Read it back with an engine that may read files.
	eng2, err := Open(ctx, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer eng2.Close()
	if _, err := eng2.DB().ExecContext(ctx, "SET TimeZone = 'UTC'"); err != nil {
		t.Fatal(err)
	}
	rows, err := eng2.DB().QueryContext(ctx, "SELECT * FROM read_parquet("+QuoteString(out)+") ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b bytes.Buffer
	if _, err := WriteRows(&b, rows, FormatCSV); err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join("testdata", "format", "csv.golden"), b.Bytes())
}
