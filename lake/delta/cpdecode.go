package delta

import (
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/parquet-go/parquet-go"
)

// A checkpoint this package wrote is decoded column by column
// (readOwnCheckpoint) rather than through parquet-go's row reconstruction,
// which costs about ten times as much per row and allocates per row of
// its read buffer; the decoding is the part of a snapshot load that grows
// with the table's live files (issue 14, case 11). Only a file whose
// schema is exactly cpRow's takes this path: the leaf columns are then
// known by position. Any other checkpoint (Spark's, delta-rs', an older
// layout of ours) is read by readCheckpointRows' generic path.

// cpSchema is the schema checkpoints are written with.
var cpSchema = sync.OnceValue(func() *parquet.Schema { return parquet.SchemaOf(cpRow{}) })

// Leaf columns of cpSchema, in schema order (parquet.SchemaOf(cpRow{}).Columns()).
const (
	cTxnAppID = iota
	cTxnVersion
	cTxnLastUpdated
	cAddPath
	cAddPVKey
	cAddPVValue
	cAddSize
	cAddModTime
	cAddDataChange
	cAddTagsKey
	cAddTagsValue
	cAddStats
	cRemovePath
	cRemoveDeletionTimestamp
	cRemoveDataChange
	cRemoveExtended
	cRemovePVKey
	cRemovePVValue
	cRemoveSize
	cMetaID
	cMetaName
	cMetaDescription
	cMetaFormatProvider
	cMetaFormatOptKey
	cMetaFormatOptValue
	cMetaSchemaString
	cMetaPartitionColumns
	cMetaConfigKey
	cMetaConfigValue
	cMetaCreatedTime
	cProtoMinReader
	cProtoMinWriter
	cProtoReaderFeatures
	cProtoWriterFeatures
	cpColumns
)

// cpColumn is the values of one leaf column of a row group, read row by
// row.
type cpColumn struct {
	vals []parquet.Value
	pos  int
	cur  []parquet.Value // the values of the current row
}

// next moves to the next row: one value for a column that does not
// repeat, one or more (the first with repetition level 0) for a map or
// list.
func (c *cpColumn) next() error {
	if c.pos >= len(c.vals) {
		return fmt.Errorf("checkpoint column ends before its row group")
	}
	start := c.pos
	c.pos++
	for c.pos < len(c.vals) && c.vals[c.pos].RepetitionLevel() > 0 {
		c.pos++
	}
	c.cur = c.vals[start:c.pos]
	return nil
}

// def is the definition level of the current row's (first) value.
func (c *cpColumn) def() int { return c.cur[0].DefinitionLevel() }

// The definition levels of cpSchema: a top-level action struct is set at
// level 1 and its scalar fields at 2; format.provider at 3.
const (
	defStruct = 1
	defField  = 2
)

func (c *cpColumn) str(def int) *string {
	if c.def() < def {
		return nil
	}
	s := string(c.cur[0].ByteArray())
	return &s
}

func (c *cpColumn) i64() *int64 {
	if c.def() < defField {
		return nil
	}
	v := c.cur[0].Int64()
	return &v
}

func (c *cpColumn) i32() *int32 {
	if c.def() < defField {
		return nil
	}
	v := c.cur[0].Int32()
	return &v
}

func (c *cpColumn) boolean() *bool {
	if c.def() < defField {
		return nil
	}
	v := c.cur[0].Boolean()
	return &v
}

// strMap reads a map<string,string> from its key and value columns; set is
// the definition level at which the map itself is present (entries are
// one level deeper). It is nil when the map is null, empty when it has no
// entries.
func strMap(k, v *cpColumn, set int) map[string]string {
	if k.def() < set {
		return nil
	}
	m := make(map[string]string, len(k.cur))
	if k.def() == set {
		return m
	}
	for i, kv := range k.cur {
		m[string(kv.ByteArray())] = string(v.cur[i].ByteArray())
	}
	return m
}

// nullableMap is strMap for partition values, whose values may be null (at
// the key's level: the value column's own level is one deeper).
func nullableMap(k, v *cpColumn, set int) map[string]*string {
	if k.def() < set {
		return nil
	}
	m := make(map[string]*string, len(k.cur))
	if k.def() == set {
		return m
	}
	for i, kv := range k.cur {
		var p *string
		if val := v.cur[i]; val.DefinitionLevel() > set+1 {
			s := string(val.ByteArray())
			p = &s
		}
		m[string(kv.ByteArray())] = p
	}
	return m
}

// strList reads a list<string>; set as for strMap.
func strList(c *cpColumn, set int) []string {
	if c.def() < set {
		return nil
	}
	l := make([]string, 0, len(c.cur))
	if c.def() == set {
		return l
	}
	for _, v := range c.cur {
		l = append(l, string(v.ByteArray()))
	}
	return l
}

// cpPart is a set of the kinds of action a checkpoint read applies. A
// load that needs only the table's txns, metadata and protocol (Table.Head)
// reads partHead: the add and remove columns, which hold one row per live
// file with its statistics and so grow with the table, are not decoded.
// A later full load of the same checkpoint reads partFiles on top of it.
type cpPart uint8

const (
	partHead  cpPart = 1 << iota // txn, metaData, protocol
	partFiles                    // add, remove
	partAll   = partHead | partFiles
)

// part is the part an action belongs to (0 for one this package ignores).
func (a action) part() cpPart {
	switch {
	case a.Add != nil, a.Remove != nil:
		return partFiles
	case a.Txn != nil, a.MetaData != nil, a.Protocol != nil:
		return partHead
	}
	return 0
}

// columnPart is the part leaf column i of cpSchema belongs to.
func columnPart(i int) cpPart {
	if i >= cAddPath && i <= cRemoveSize {
		return partFiles
	}
	return partHead
}

// readOwnCheckpoint decodes the columns of part of a checkpoint with
// cpSchema, column by column, and applies those actions in row order. ok is
// false when the file has another schema (nothing was applied then).
func readOwnCheckpoint(pf *parquet.File, part cpPart, apply func(action)) (ok bool, err error) {
	if !parquet.EqualNodes(pf.Schema(), cpSchema()) || len(pf.Schema().Columns()) != cpColumns {
		return false, nil
	}
	for _, rg := range pf.RowGroups() {
		if err := readOwnRowGroup(rg, part, apply); err != nil {
			return true, err
		}
	}
	return true, nil
}

func readOwnRowGroup(rg parquet.RowGroup, part cpPart, apply func(action)) error {
	var (
		cols [cpColumns]cpColumn
		read []int // the columns of part
	)
	chunks := rg.ColumnChunks()
	if len(chunks) != cpColumns {
		return fmt.Errorf("checkpoint row group has %d columns, want %d", len(chunks), cpColumns)
	}
	for i, cc := range chunks {
		if columnPart(i)&part == 0 {
			continue
		}
		vals, err := readColumnValues(cc)
		if err != nil {
			return fmt.Errorf("checkpoint column %d: %w", i, err)
		}
		cols[i].vals = vals
		read = append(read, i)
	}
	// A row's action is the one struct set among the columns read; a row
	// of the other part has none of them set.
	files, head := part&partFiles != 0, part&partHead != 0
	for range rg.NumRows() {
		for _, i := range read {
			if err := cols[i].next(); err != nil {
				return fmt.Errorf("checkpoint column %d: %w", i, err)
			}
		}
		var r cpRow
		switch {
		case files && cols[cAddPath].def() >= defStruct:
			r.Add = &cpAdd{
				Path:             cols[cAddPath].str(defField),
				PartitionValues:  nullableMap(&cols[cAddPVKey], &cols[cAddPVValue], defField),
				Size:             cols[cAddSize].i64(),
				ModificationTime: cols[cAddModTime].i64(),
				DataChange:       cols[cAddDataChange].boolean(),
				Tags:             strMap(&cols[cAddTagsKey], &cols[cAddTagsValue], defField),
				Stats:            cols[cAddStats].str(defField),
			}
		case head && cols[cTxnAppID].def() >= defStruct:
			r.Txn = &cpTxn{AppID: cols[cTxnAppID].str(defField), Version: cols[cTxnVersion].i64(), LastUpdated: cols[cTxnLastUpdated].i64()}
		case files && cols[cRemovePath].def() >= defStruct:
			r.Remove = &cpRemove{
				Path:                 cols[cRemovePath].str(defField),
				DeletionTimestamp:    cols[cRemoveDeletionTimestamp].i64(),
				DataChange:           cols[cRemoveDataChange].boolean(),
				ExtendedFileMetadata: cols[cRemoveExtended].boolean(),
				PartitionValues:      nullableMap(&cols[cRemovePVKey], &cols[cRemovePVValue], defField),
				Size:                 cols[cRemoveSize].i64(),
			}
		case head && cols[cMetaID].def() >= defStruct:
			m := &cpMetadata{
				ID: cols[cMetaID].str(defField), Name: cols[cMetaName].str(defField),
				Description:      cols[cMetaDescription].str(defField),
				SchemaString:     cols[cMetaSchemaString].str(defField),
				PartitionColumns: strList(&cols[cMetaPartitionColumns], defField),
				Configuration:    strMap(&cols[cMetaConfigKey], &cols[cMetaConfigValue], defField),
				CreatedTime:      cols[cMetaCreatedTime].i64(),
			}
			if cols[cMetaFormatProvider].def() >= defField {
				m.Format = &cpFormat{
					Provider: cols[cMetaFormatProvider].str(defField + 1),
					Options:  strMap(&cols[cMetaFormatOptKey], &cols[cMetaFormatOptValue], defField+1),
				}
			}
			r.MetaData = m
		case head && cols[cProtoMinReader].def() >= defStruct:
			r.Protocol = &cpProtocol{
				MinReaderVersion: cols[cProtoMinReader].i32(), MinWriterVersion: cols[cProtoMinWriter].i32(),
				ReaderFeatures: strList(&cols[cProtoReaderFeatures], defField),
				WriterFeatures: strList(&cols[cProtoWriterFeatures], defField),
			}
		default:
			continue
		}
		a, ok, err := r.action()
		if err != nil {
			return err
		}
		if ok {
			apply(a)
		}
	}
	for _, i := range read {
		if cols[i].pos != len(cols[i].vals) {
			return fmt.Errorf("checkpoint column %d has values past its row group's rows", i)
		}
	}
	return nil
}

// readColumnValues reads every value of a column chunk. The values keep
// referring to their pages' memory (pages are not released to a pool), so
// they stay valid while the caller reads them. Pages decode straight into
// the result: a staging buffer cost a second copy of every value, with a
// write barrier per value while the collector runs (a sixth of a
// checkpoint's decoding).
func readColumnValues(cc parquet.ColumnChunk) ([]parquet.Value, error) {
	pages := cc.Pages()
	defer pages.Close()
	out := make([]parquet.Value, 0, max(cc.NumValues(), 1))
	for {
		p, err := pages.ReadPage()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		vr := p.Values()
		for {
			if len(out) == cap(out) {
				out = slices.Grow(out, 512) // more values than the chunk said
			}
			n, err := vr.ReadValues(out[len(out):cap(out)])
			out = out[:len(out)+n]
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, err
			}
		}
	}
}
