package brokers

import (
	"fmt"
	"log/slog"

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
		return NewNATS(store, NATSOptions{Options: o, URL: b.URL, Stream: b.Stream, Subject: b.Subject, Durable: b.Durable, AckWait: b.AckWait})
	case "mqtt":
		return NewMQTT(store, MQTTOptions{Options: o, URL: b.URL, Topic: b.Topic, QoS: 1, ClientID: b.ClientID, Username: b.Username, Password: b.Password})
	}
	return nil, fmt.Errorf("source %s: unknown broker %q", src.Name, b.Kind)
}
