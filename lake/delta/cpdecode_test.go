package delta

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
)

// TestOwnCheckpointDecoder: the column-by-column decoder of our own
// checkpoints yields the same actions, in the same order, as parquet-go's
// generic row reader, for every kind of row and every null, empty and
// repeated shape of its fields, across several pages.
func TestOwnCheckpointDecoder(t *testing.T) {
	now := time.Now()
	str := func(s string) *string { return &s }
	snap := &Snapshot{
		Version:  42,
		Protocol: Protocol{MinReaderVersion: 3, MinWriterVersion: 7, ReaderFeatures: []string{"timestampNtz"}, WriterFeatures: []string{"timestampNtz", "appendOnly"}},
		Metadata: Metadata{ID: "id-1", Name: "meters", Description: "d", Format: Format{Provider: "parquet", Options: map[string]string{"k": "v"}},
			SchemaString: `{"type":"struct","fields":[]}`, PartitionColumns: []string{"event_date", "region"},
			Configuration: map[string]string{"delta.appendOnly": "false", "x": ""}},
		txns: map[string]Txn{},
	}
	for i := range 3000 { // several pages per column
		pv := PartitionValues{"event_date": str(fmt.Sprintf("2026-01-%02d", i%28+1)), "region": nil}
		switch i % 4 {
		case 1:
			pv = PartitionValues{}
		case 2:
			pv = nil
		}
		a := Add{Path: fmt.Sprintf("event_date=x/part-%05d é %%20.parquet", i), PartitionValues: pv, Size: int64(i * 10),
			ModificationTime: int64(i), DataChange: i%2 == 0}
		if i%3 == 0 {
			a.Stats = fmt.Sprintf(`{"numRecords":%d}`, i)
		}
		if i%5 == 0 {
			a.Tags = map[string]string{"t": fmt.Sprint(i), "u": ""}
		} else if i%5 == 1 {
			a.Tags = map[string]string{}
		}
		snap.Files = append(snap.Files, a)
		if i%2 == 0 {
			snap.txns[fmt.Sprintf("app-%d", i)] = Txn{AppID: fmt.Sprintf("app-%d", i), Version: int64(i), LastUpdated: int64(i * 7)}
		}
		if i%7 == 0 {
			r := Remove{Path: fmt.Sprintf("gone-%d.parquet", i), DeletionTimestamp: now.UnixMilli() - int64(i), ExtendedFileMetadata: i%14 == 0,
				PartitionValues: PartitionValues{"event_date": nil}, Size: int64(i)}
			snap.tombstones.set(r)
		}
	}
	// Metadata without optional parts too: a second file.
	bare := &Snapshot{Version: 1, Protocol: Protocol{MinReaderVersion: 1, MinWriterVersion: 2},
		Metadata: Metadata{ID: "id-2", Format: Format{Provider: "parquet"}, SchemaString: "{}"}}
	for _, s := range []*Snapshot{snap, bare} {
		b, err := encodeCheckpoint(checkpointRows(s, now))
		if err != nil {
			t.Fatal(err)
		}
		pf, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		var own, generic []action
		ok, err := readOwnCheckpoint(pf, partAll, func(a action) { own = append(own, a) })
		if !ok || err != nil {
			t.Fatalf("own decoder: ok %v, err %v; want our checkpoint decoded", ok, err)
		}
		if err := readForeignCheckpoint(pf, func(a action) { generic = append(generic, a) }); err != nil {
			t.Fatal(err)
		}
		if len(own) != len(generic) || len(own) != 2+len(s.txns)+len(s.Files)+s.tombstones.len() {
			t.Fatalf("own decoder %d actions, generic %d, want %d", len(own), len(generic), 2+len(s.txns)+len(s.Files)+s.tombstones.len())
		}
		for i := range own {
			if !reflect.DeepEqual(own[i], generic[i]) {
				t.Fatalf("action %d: own decoder\n%s\ngeneric\n%s", i, dump(own[i]), dump(generic[i]))
			}
		}
		// Reading only some columns (Table.Head) yields exactly the
		// actions of that part, in the same order.
		for _, part := range []cpPart{partHead, partFiles} {
			var want, got []action
			for _, a := range own {
				if a.part() == part {
					want = append(want, a)
				}
			}
			if ok, err := readOwnCheckpoint(pf, part, func(a action) { got = append(got, a) }); !ok || err != nil {
				t.Fatalf("own decoder, part %d: ok %v, err %v", part, ok, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("part %d: %d actions, want %d", part, len(got), len(want))
			}
		}
	}
}

// TestForeignCheckpointSchema: a checkpoint with another layout is left to
// the generic reader.
func TestForeignCheckpointSchema(t *testing.T) {
	type otherTxn struct {
		AppID   *string `parquet:"appId,optional"`
		Version *int64  `parquet:"version,optional"`
	}
	type otherRow struct {
		Txn *otherTxn `parquet:"txn,optional"`
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[otherRow](&buf)
	app, v := "a", int64(3)
	if _, err := w.Write([]otherRow{{Txn: &otherTxn{AppID: &app, Version: &v}}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := readOwnCheckpoint(pf, partAll, func(action) { t.Fatal("own decoder applied an action") }); ok || err != nil {
		t.Fatalf("own decoder on a foreign layout: ok %v, err %v", ok, err)
	}
	var got []action
	if err := readCheckpointRows(buf.Bytes(), partAll, func(a action) { got = append(got, a) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Txn == nil || got[0].Txn.AppID != "a" || got[0].Txn.Version != 3 {
		t.Fatalf("generic path read %s", dump(got))
	}
}

func dump(v any) string { return fmt.Sprintf("%#v", v) }

// BenchmarkOwnCheckpointDecode decodes a checkpoint shaped like case 11's
// bronze table after 100,000 landed objects: about 800 live files with
// statistics in 700 date partitions and 1,000 live txns.
func BenchmarkOwnCheckpointDecode(b *testing.B) {
	snap := &Snapshot{Version: 100, Protocol: Protocol{MinReaderVersion: 1, MinWriterVersion: 2},
		Metadata: Metadata{ID: "id", Format: Format{Provider: "parquet"}, SchemaString: "{}", PartitionColumns: []string{"event_date"}},
		txns:     map[string]Txn{}}
	for i := range 800 {
		d := fmt.Sprintf("2025-%02d-%02d", i/28%12+1, i%28+1)
		snap.Files = append(snap.Files, Add{Path: fmt.Sprintf("event_date=%s/part-%05d-6f1c2a9e.zstd.parquet", d, i),
			PartitionValues: PartitionValues{"event_date": &d}, Size: 6000, ModificationTime: int64(i), DataChange: true,
			Stats: fmt.Sprintf(`{"numRecords":%d,"minValues":{"meter_id":"MTR-000","timestamp":"%sT00:00:00.000Z","energy_usage":1.5},"maxValues":{"meter_id":"MTR-049","timestamp":"%sT23:50:00.000Z","energy_usage":90.99},"nullCount":{"meter_id":0,"timestamp":0,"energy_usage":0}}`, 144, d, d)})
	}
	for i := range 1000 {
		id := fmt.Sprintf("raw/meters/%064x", i*7919)
		snap.txns[id] = Txn{AppID: id, Version: 1, LastUpdated: int64(i)}
	}
	data, err := encodeCheckpoint(checkpointRows(snap, time.Now()))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		if err := readCheckpointRows(data, partAll, func(action) { n++ }); err != nil {
			b.Fatal(err)
		}
		if n != 1802 {
			b.Fatalf("%d actions, want 1802", n)
		}
	}
}
