package brokers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/medallion-dev/medallion/lake"
	"github.com/medallion-dev/medallion/layers/raw"
)

// keepIntents is how many of the newest landed batches a ledger remembers.
// Only the newest can be redelivered after landing for Kafka and NATS (the
// next intent is written after the commit or ack is confirmed); MQTT acks
// are not confirmed, so a few more are kept for it.
const keepIntents = 4

// maxVariants bounds how many times a batch is relanded with one more
// trailing newline because its bytes equal an older batch's.
const maxVariants = 10000

// intent records one batch before it is landed: which broker messages it
// holds and the SHA-256 of its bytes, so that after a crash the batch can
// be recognised as landed (its manifest exists and carries Name).
type intent struct {
	Name     string `json:"name"`     // the manifest's name: which messages, e.g. kafka:orders:3:100-199
	SHA256   string `json:"sha256"`   // of the batch's bytes, trailing newlines included
	Messages int    `json:"messages"` // how many messages
	Padding  int    `json:"padding,omitempty"`

	// Kafka: the batch is every record of one partition in [First, Last].
	First int64 `json:"first,omitempty"`
	Last  int64 `json:"last,omitempty"`
	// NATS: the stream sequences of the messages, as closed intervals.
	Seqs [][2]uint64 `json:"seqs,omitempty"`
	// MQTT: per message, "<packet id>:<hash of topic and payload>".
	IDs []string `json:"ids,omitempty"`
}

// ledgerFile is the JSON of a ledger object.
type ledgerFile struct {
	Intents []intent `json:"intents"` // oldest first
}

// ledger is one consumer's (or Kafka partition's) intent log in the lake.
type ledger struct {
	store   lake.Store
	opts    Options
	key     string // raw/<source>/_offsets/...
	kind    string // kafka | nats | mqtt, for crash point names
	intents []intent
	crash   crashHook
	stats   *counters
	// nextPad remembers, per batch content without padding, the padding
	// to try first, so repeated identical batches do not probe from zero.
	nextPad map[string]int
}

// ledgerKey is raw/<source>/_offsets/<parts...>.json.
func ledgerKey(source string, parts ...string) string {
	for i, p := range parts {
		parts[i] = escapeKeyPart(p)
	}
	return raw.SourceDir(source) + "_offsets/" + strings.Join(parts, "/") + ".json"
}

// escapeKeyPart keeps a broker name (topic, subject, client id) from adding
// key levels or escaping the source's directory.
func escapeKeyPart(s string) string {
	r := strings.NewReplacer("%", "%25", "/", "%2F", "\\", "%5C", "\x00", "%00")
	s = r.Replace(s)
	if s == "" || s == "." || s == ".." {
		s = strings.ReplaceAll("%"+s, ".", "%2E")
	}
	return s
}

// openLedger reads the ledger at key and keeps only its landed intents: an
// intent that is not landed was never acknowledged, so its messages are
// simply consumed again.
func openLedger(ctx context.Context, store lake.Store, o Options, kind, key string, st *counters, crash crashHook) (*ledger, error) {
	l := &ledger{store: store, opts: o, key: key, kind: kind, crash: crash, stats: st, nextPad: map[string]int{}}
	rc, _, err := store.Get(ctx, key)
	if errors.Is(err, lake.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read broker ledger %s: %w", key, err)
	}
	defer rc.Close()
	var f ledgerFile
	if err := json.NewDecoder(io.LimitReader(rc, 64<<20)).Decode(&f); err != nil {
		return nil, fmt.Errorf("read broker ledger %s: %w", key, err)
	}
	for _, in := range f.Intents {
		ok, err := l.landed(ctx, in)
		if err != nil {
			return nil, err
		}
		if ok {
			l.intents = append(l.intents, in)
		}
	}
	return l, nil
}

// landed reports whether the batch an intent describes was committed.
func (l *ledger) landed(ctx context.Context, in intent) (bool, error) {
	if in.SHA256 == "" {
		return false, nil
	}
	m, err := raw.ReadManifest(ctx, l.store, l.opts.Source, in.SHA256)
	if errors.Is(err, lake.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("ledger %s: check batch %s: %w", l.key, in.Name, err)
	}
	return m.Name == in.Name, nil
}

func (l *ledger) save(ctx context.Context) error {
	js, err := json.Marshal(ledgerFile{Intents: l.intents})
	if err != nil {
		return fmt.Errorf("encode broker ledger %s: %w", l.key, err)
	}
	js = append(js, '\n')
	if _, err := l.store.Put(ctx, l.key, bytes.NewReader(js), int64(len(js))); err != nil {
		return fmt.Errorf("write broker ledger %s: %w", l.key, err)
	}
	return nil
}

// at is the crash point brokers-<kind>-<point> (see internal/crashpoint).
func (l *ledger) at(point string) error {
	return l.crash.Pass("brokers-" + l.kind + "-" + point)
}

// land writes the intent of a batch, then lands its bytes, relanding with
// more padding while the bytes collide with another batch's. payloads are
// the messages' payloads in order; in carries the name and members.
// When land returns nil the batch is durable and may be acknowledged.
func (l *ledger) land(ctx context.Context, in intent, payloads [][]byte) (raw.Manifest, error) {
	body, lines := encode(l.opts, payloads)
	l.stats.empty.Add(int64(len(payloads) - lines))
	if lines == 0 {
		// Nothing to land: acknowledging loses nothing.
		return raw.Manifest{}, l.at("after-land")
	}
	in.Messages = len(payloads)
	base := sha256.Sum256(body)
	baseKey := hex.EncodeToString(base[:])
	pad := l.nextPad[baseKey]
	for tries := 0; ; tries++ {
		if tries == maxVariants || pad >= maxVariants {
			return raw.Manifest{}, fmt.Errorf("land batch %s of source %s: its bytes equal those of %d earlier batches; give the messages a unique field (an id or a timestamp)", in.Name, l.opts.Source, tries)
		}
		padded := append(body[:len(body):len(body)], bytes.Repeat([]byte{'\n'}, pad)...)
		sum := sha256.Sum256(padded)
		in.SHA256, in.Padding = hex.EncodeToString(sum[:]), pad
		l.push(in)
		if err := l.save(ctx); err != nil {
			return raw.Manifest{}, err
		}
		if err := l.at("after-intent"); err != nil {
			return raw.Manifest{}, err
		}
		m, already, err := raw.Land(ctx, l.store, l.opts.Source, in.Name, l.opts.Format, bytes.NewReader(padded), l.opts.now())
		if err != nil {
			return raw.Manifest{}, fmt.Errorf("land batch %s: %w", in.Name, err)
		}
		if already && m.Name != in.Name {
			// Another batch had these bytes: this one is not landed yet.
			l.stats.collisions.Add(1)
			pad++
			continue
		}
		if len(l.nextPad) > 1024 {
			clear(l.nextPad)
		}
		if pad > 0 || l.nextPad[baseKey] > 0 {
			l.nextPad[baseKey] = pad + 1
		}
		if already {
			// This very batch landed before (a crash before the ack, and
			// the broker redelivered the same messages in the same order).
			l.stats.redelivered.Add(int64(len(payloads)))
		} else {
			l.stats.batches.Add(1)
			l.stats.messages.Add(int64(len(payloads)))
			l.stats.bytes.Add(int64(len(padded)))
		}
		if err := l.at("after-land"); err != nil {
			return raw.Manifest{}, err
		}
		return m, nil
	}
}

// push adds in as the newest intent, replacing the newest if it is the
// same batch (a relanding with more padding), keeping keepIntents.
func (l *ledger) push(in intent) {
	if n := len(l.intents); n > 0 && l.intents[n-1].Name == in.Name {
		l.intents[n-1] = in
		return
	}
	l.intents = append(l.intents, in)
	if len(l.intents) > keepIntents {
		l.intents = append([]intent(nil), l.intents[len(l.intents)-keepIntents:]...)
	}
}

// encode writes the payloads one per line in the source's format and
// returns the bytes and how many lines (non-empty payloads) they hold.
func encode(o Options, payloads [][]byte) ([]byte, int) {
	var b bytes.Buffer
	header := []byte(strings.TrimRight(o.CSVHeader, "\r\n"))
	if o.Format == "csv" {
		b.Write(header)
		b.WriteByte('\n')
	}
	lines := 0
	for _, p := range payloads {
		p = bytes.TrimRight(p, "\r\n")
		if o.Format == "csv" {
			// A producer that sends the header line (alone or above its
			// rows) repeats what the object already starts with.
			p = dropHeader(p, header)
		}
		if len(p) == 0 {
			continue
		}
		lines++
		if o.Format == "ndjson" && bytes.IndexByte(p, '\n') >= 0 {
			var c bytes.Buffer
			if json.Compact(&c, p) == nil {
				p = c.Bytes()
			}
			// Not JSON: written as received; bronze quarantines the lines.
		}
		b.Write(p)
		b.WriteByte('\n')
	}
	return b.Bytes(), lines
}

// dropHeader removes a leading line equal to header from a CSV payload
// (trailing blanks aside: the MTA's turnstile files pad their header).
func dropHeader(p, header []byte) []byte {
	first, rest, _ := bytes.Cut(p, []byte{'\n'})
	if bytes.Equal(bytes.TrimRight(first, " \t\r"), bytes.TrimRight(header, " \t")) {
		return bytes.TrimLeft(rest, "\r\n")
	}
	return p
}
