package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDerivedEventTime: a silver table's event_time may be a column derived
// from several (DATE and TIME, as MTA turnstile files have), with the same
// window and watermark semantics as a typed timestamp column.
func TestDerivedEventTime(t *testing.T) {
	l := newTestLake(t, "local")
	body := `sources:
  turnstile:
    format: csv
    schema:
      station: {type: string, from: STATION}
      date:    {type: string, from: DATE}
      time:    {type: string, from: TIME}
      entries: {type: int64, from: ENTRIES}
    derive:
      ts: "strptime(date || ' ' || time, '%m/%d/%Y %H:%M:%S')"
silver:
  entries_1h:
    from: turnstile
    event_time: ts
    window: {size: 1h}
    watermark: 0s
    group_by: [station]
    aggregates:
      readings: count(*)
      entries: sum(entries)
`
	l.writePipeline(t, body)
	data := filepath.Join(l.dir, "t1.csv")
	csv := "STATION,DATE,TIME,ENTRIES\n59 ST,05/01/2024,00:10:00,5\n59 ST,05/01/2024,00:50:00,7\nCANAL ST,05/01/2024,00:20:00,3\n59 ST,05/01/2024,01:05:00,1\n59 ST,05/01/2024,03:00:00,1\n"
	if err := os.WriteFile(data, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	l.run(t, "ingest", "turnstile", data)
	l.run(t, "run")
	got := l.query(t, "SELECT station, strftime(window_start, '%H:%M') AS w, readings, entries FROM silver.entries_1h ORDER BY w, station")
	// The 03:00 row moved the watermark to 03:00: windows ending by then are final.
	want := "station,w,readings,entries\n59 ST,00:00,2,12\nCANAL ST,00:00,1,3\n59 ST,01:00,1,1\n"
	if got != want {
		t.Fatalf("silver:\n%s\nwant\n%s", got, want)
	}
	// A derived event_time that is not a timestamp is refused with its name.
	l2 := newTestLake(t, "local")
	l2.writePipeline(t, strings.Replace(strings.Replace(body, "event_time: ts", "event_time: day", 1),
		"    derive:\n", "    derive:\n      day: \"date\"\n", 1))
	l2.run(t, "ingest", "turnstile", data)
	out, errOut, err := l2.exec(t, nil, "run")
	if err == nil || !strings.Contains(out+errOut, `event_time "day" of bronze.turnstile is string, not a timestamp`) {
		t.Fatalf("a VARCHAR event_time: %v\n%s\n%s", err, out, errOut)
	}
}
