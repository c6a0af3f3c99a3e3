// Package brokers lands messages from MQTT, NATS JetStream and Kafka in the
// raw layer, in batches, and acknowledges them to the broker only after the
// batch is durable in the lake.
//
// Each source (Kafka, NATS, MQTT) owns one consumer goroutine: Start(ctx)
// makes a first connection attempt and starts it. A broker that is down (or
// a Kafka topic or NATS stream that is missing) does not fail Start: the
// source reports itself down in Status, with the reason, and reconnects
// with a backoff (0.5s doubling to 30s). The three sources share one shape
// (base): each gives only the function that connects a session and the
// session's loop. Close cancels the goroutine, lands what is buffered,
// acknowledges it, and waits.
//
// The goroutine buffers messages and cuts a batch when it holds
// Batch.MaxMessages messages or Batch.MaxBytes bytes, or when its oldest
// message has waited Batch.MaxWait. A batch becomes one raw object (one
// message per line; see Options.Format) landed with raw.Land, so bronze
// reads broker data exactly like files, bad lines quarantined alike. A CSV
// source's messages are rows without a header: every object starts with
// Options.CSVHeader (from csv.columns or the schema's order), and a message
// that repeats that header line has it dropped.
//
// # Exactly-once landing: the intent ledger
//
// Every batch goes through the same three steps:
//
//  1. intent: the batch's name (which broker messages it holds, e.g.
//     "kafka:orders:3:100-199"), the SHA-256 of its bytes and its members
//     (Kafka offsets, JetStream stream sequences, MQTT packet ids with a
//     hash of topic and payload) are written to a small ledger object in the
//     lake, raw/<source>/_offsets/<broker>/<...>.json, with a plain Put;
//  2. land: raw.Land creates the object and then its manifest with
//     PutIfAbsent; the manifest is the commit point;
//  3. acknowledge: Kafka offsets are committed, JetStream messages are
//     double-acked (the server confirms), MQTT messages get their PUBACK.
//
// A batch "is landed" exactly when the manifest named by the intent's
// SHA-256 exists and carries the intent's name. When a source starts (or a
// Kafka partition is assigned to it), it reads the ledger, keeps the landed
// intents and forgets the others, and drops (and acknowledges) any
// redelivered message that is a member of a landed intent. Whatever the
// point at which the process dies:
//
//   - before the intent is written, or after it but before the manifest:
//     nothing of the batch was acknowledged, the broker redelivers all of
//     it, the stale intent is not landed and is ignored, and the messages
//     land in a later batch. A half-written object without a manifest is
//     never read (see package raw).
//   - after the manifest, before or during the acknowledgement: the broker
//     redelivers some or all of the batch; the intent is landed, so those
//     messages are recognised, dropped and acknowledged. Nothing doubles.
//   - after the acknowledgement: nothing is redelivered.
//
// Nothing acknowledged is lost, because a message is only acknowledged
// after the manifest of a batch holding it exists. Batch boundaries after a
// restart need not match the ones before it: recognition is per message,
// not per batch.
//
// Two different batches can have identical bytes (say, two one-message
// batches of the same heartbeat). raw.Land would take the second for the
// first and report it already landed. The manifest's name tells them apart:
// when Land reports a manifest with another name, the batch is landed again
// with one more trailing newline (blank lines are skipped by every reader),
// a new SHA-256 and an updated intent.
//
// # Guarantees per broker
//
// Kafka (franz-go, consumer group, auto-commit off): exactly once. Offsets
// within a partition are delivered in order, so the ledger of each
// partition, raw/<source>/_offsets/kafka/<topic>/<partition>.json, acts as
// a watermark: a record at or below the last offset of a landed intent is
// dropped. Rebalances are blocked while a batch is landed and committed
// (kgo.BlockRebalanceOnPoll); a revoked partition's unlanded buffer is
// dropped, and its new owner resumes from the committed offset with the same
// ledger. If a topic is deleted and recreated, delete its ledger directory.
//
// NATS JetStream (durable pull consumer, AckExplicit): exactly once. The
// ledger, raw/<source>/_offsets/nats/<stream>/<durable>.json, holds the
// stream sequences of the last batches. Redeliveries may come out of order
// (after AckWait), so recognition is by sequence, not by a watermark. Acks
// are confirmed (DoubleAck) before the next batch's intent is written, so
// only the recorded batches can be redelivered after being landed. AckWait
// must exceed the time to land a batch; otherwise JetStream redelivers
// messages still being landed, which are then recognised and dropped.
//
// MQTT (QoS 1, persistent session: clean session off and a fixed client id,
// manual acks): at least once from the broker, exactly once in the lake in
// practice. MQTT messages carry no identity, so a redelivery (DUP flag set)
// is recognised by its packet id together with a hash of its topic and
// payload, against the last few landed batches in
// raw/<source>/_offsets/mqtt/<client id>.json. A first delivery (DUP clear)
// is never dropped. The one loss this admits: a new message with the same
// topic and payload that the broker sends under a recently freed packet id,
// is not acknowledged before a crash, and is redelivered. The broker bounds
// unacknowledged messages in flight (Mosquitto: max_inflight_messages,
// default 20), so a batch holds at most that many messages unless MaxWait
// passes first; raise that setting for bigger batches. If the session
// expires on the broker, messages queued for it are lost by the broker.
//
// A source that runs in two processes at once with the same group, durable
// or client id is not protected against itself beyond what the broker
// provides (Kafka assigns each partition to one member; JetStream may hand
// the same message to two pullers only after AckWait).
package brokers
