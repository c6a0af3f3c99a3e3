package pgmirror

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/medallion-dev/medallion/internal/crashpoint"
	"github.com/medallion-dev/medallion/warehouse"
)

// duringCopyAfter is the row after which the mirror.during-copy crash
// point fires (or the end of the rows, if there are fewer).
const duringCopyAfter = 5000

// fileSource is a pgx.CopyFromSource over the rows of several data files,
// read one file at a time through DuckDB: memory stays bounded whatever
// the number of rows. With ord, the last value of each row is its order
// (file index << 40 | position in the file), so that "the last file wins"
// when keys repeat.
type fileSource struct {
	ctx   context.Context
	eng   *warehouse.Engine
	files []warehouse.FileSpec
	dec   []bool // columns whose decimal text is sent as numeric
	ord   bool

	i     int
	cur   *warehouse.FileRows
	row   []any
	err   error
	rows  int64
	crash bool // the during-copy crash point was passed
}

func newFileSource(ctx context.Context, eng *warehouse.Engine, files []warehouse.FileSpec, cols []column, ord bool) *fileSource {
	s := &fileSource{ctx: ctx, eng: eng, files: files, ord: ord, dec: make([]bool, len(cols))}
	for i, c := range cols {
		s.dec[i] = c.decimal
	}
	n := len(cols)
	if ord {
		n++
	}
	s.row = make([]any, n)
	return s
}

// Next implements pgx.CopyFromSource.
func (s *fileSource) Next() bool {
	for s.err == nil {
		if s.cur == nil {
			if s.i >= len(s.files) {
				s.crashPoint()
				return false
			}
			s.cur, s.err = s.eng.ReadFile(s.ctx, s.files[s.i])
			if s.err != nil {
				return false
			}
		}
		if s.cur.Next() {
			s.fill()
			return s.err == nil
		}
		if err := s.cur.Err(); err != nil {
			s.err = fmt.Errorf("read %s: %w", s.files[s.i].File.Path, err)
		}
		s.cur.Close()
		s.cur = nil
		s.i++
	}
	return false
}

func (s *fileSource) fill() {
	for j, v := range s.cur.Values() {
		if s.dec[j] && v != nil {
			str, ok := v.(string)
			if !ok {
				s.err = fmt.Errorf("read %s: decimal column arrived as %T", s.files[s.i].File.Path, v)
				return
			}
			var n pgtype.Numeric
			if err := n.Scan(str); err != nil {
				s.err = fmt.Errorf("read %s: decimal %q: %w", s.files[s.i].File.Path, str, err)
				return
			}
			v = n
		}
		s.row[j] = v
	}
	if s.ord {
		s.row[len(s.row)-1] = int64(s.i)<<40 | s.cur.Position()
	}
	s.rows++
	if s.rows == duringCopyAfter {
		s.crashPoint()
	}
}

func (s *fileSource) crashPoint() {
	if !s.crash {
		s.crash = true
		crashpoint.At(CrashDuringCopy)
	}
}

// Values implements pgx.CopyFromSource. The slice is reused by Next.
func (s *fileSource) Values() ([]any, error) { return s.row, s.err }

// Err implements pgx.CopyFromSource.
func (s *fileSource) Err() error { return s.err }

// close releases the file being read, if the copy stopped early.
func (s *fileSource) close() {
	if s.cur != nil {
		s.cur.Close()
		s.cur = nil
	}
}
