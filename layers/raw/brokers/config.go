package brokers

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/medallion-dev/medallion/internal/config"
	"github.com/medallion-dev/medallion/lake"
)

// FromConfig builds the broker source a pipeline source declares with
// from: (kafka, nats or mqtt). Batch settings left at zero take
// DefaultBatch's values.
func FromConfig(store lake.Store, src *config.Source, log *slog.Logger) (Source, error) {
	b := src.Broker
	if b == nil {
		return nil, fmt.Errorf("source %s: no from: broker", src.Name)
	}
	format := src.Format
	if format == "json" {
		format = "ndjson" // messages land one per line
	}
	o := DefaultOptions(src.Name, format)
	o.Logger = log
	if format == "csv" {
		o.CSVHeader = csvHeader(src)
	}
	if b.BatchMessages > 0 {
		o.Batch.MaxMessages = b.BatchMessages
	}
	if b.BatchBytes > 0 {
		o.Batch.MaxBytes = b.BatchBytes
	}
	if b.BatchWait > 0 {
		o.Batch.MaxWait = b.BatchWait
	}
	switch b.Kind {
	case "kafka":
		return NewKafka(store, KafkaOptions{Options: o, Brokers: b.Brokers, Topic: b.Topic, Group: b.Group})
	case "nats":
		return NewNATS(store, NATSOptions{Options: o, URL: b.URL, Stream: b.Stream, Subject: b.Subject, Durable: b.Durable, AckWait: b.AckWait, Create: b.Create})
	case "mqtt":
		return NewMQTT(store, MQTTOptions{Options: o, URL: b.URL, Topic: b.Topic, QoS: 1, ClientID: b.ClientID, Username: b.Username, Password: b.Password})
	}
	return nil, fmt.Errorf("source %s: unknown broker %q", src.Name, b.Kind)
}

// csvHeader is the header line written above a CSV broker source's rows:
// csv.columns, or else the schema's source names in declaration order,
// joined by the source's delimiter and quoted where they need it.
func csvHeader(src *config.Source) string {
	cols := src.CSVColumns
	if len(cols) == 0 {
		for _, c := range src.Schema {
			cols = append(cols, c.From)
		}
	}
	delim, quote := src.CSV.Delimiter, src.CSV.Quote
	if delim == "" {
		delim = ","
	}
	if quote == "" {
		quote = `"`
	}
	fields := make([]string, len(cols))
	for i, c := range cols {
		if strings.Contains(c, delim) || strings.Contains(c, quote) || strings.ContainsAny(c, "\r\n") || strings.TrimSpace(c) != c {
			c = quote + strings.ReplaceAll(c, quote, quote+quote) + quote
		}
		fields[i] = c
	}
	return strings.Join(fields, delim)
}
