package deploy_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

const (
	kafkaOverlay  = "compose/kafka.yml"
	kafkaPipeline = "compose/kafka/medallion.yaml"
)

// loadKafkaProject loads docker-compose.yml with the Kafka overlay, as
// `docker compose -f docker-compose.yml -f kafka.yml config` would.
func loadKafkaProject(t *testing.T) *types.Project {
	t.Helper()
	var files []string
	for _, f := range []string{composeFile, kafkaOverlay} {
		abs, err := filepath.Abs(f)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, abs)
	}
	opts, err := cli.NewProjectOptions(files, cli.WithWorkingDirectory(filepath.Dir(files[0])), cli.WithInterpolation(true))
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("%s with %s does not load as a Compose project: %v", composeFile, kafkaOverlay, err)
	}
	return p
}

// TestComposeKafka checks the Kafka overlay: a pinned single-node KRaft
// broker, a topic created before medallion starts, and medallion running the
// Kafka pipeline whose broker address and topic are those.
func TestComposeKafka(t *testing.T) {
	p := loadKafkaProject(t)
	kafka, err := p.GetService("kafka")
	if err != nil {
		t.Fatal(err)
	}
	if why := imagePinned(kafka.Image); why != "" {
		t.Errorf("kafka: image %q: %s", kafka.Image, why)
	}
	env := func(s types.ServiceConfig, k string) string {
		if v := s.Environment[k]; v != nil {
			return *v
		}
		return ""
	}
	if roles := env(kafka, "KAFKA_PROCESS_ROLES"); !strings.Contains(roles, "controller") || !strings.Contains(roles, "broker") {
		t.Errorf("kafka: KAFKA_PROCESS_ROLES %q: want broker,controller (KRaft, one node)", roles)
	}
	if kafka.HealthCheck == nil || len(kafka.HealthCheck.Test) == 0 {
		t.Error("kafka: no healthcheck (kafka-init waits for it)")
	}
	for _, k := range []string{"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"} {
		if env(kafka, k) != "1" {
			t.Errorf("kafka: %s = %q: a single broker needs 1", k, env(kafka, k))
		}
	}
	init, err := p.GetService("kafka-init")
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := init.DependsOn["kafka"]; !ok || d.Condition != types.ServiceConditionHealthy {
		t.Errorf("kafka-init does not wait for kafka to be healthy: %+v", init.DependsOn)
	}
	med, err := p.GetService("medallion")
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := med.DependsOn["kafka-init"]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
		t.Errorf("medallion does not wait for kafka-init: %+v", med.DependsOn)
	}
	for dep := range map[string]bool{"minio": true, "postgres": true} {
		if _, ok := med.DependsOn[dep]; !ok {
			t.Errorf("the overlay lost medallion's dependency on %s", dep)
		}
	}
	// medallion runs the Kafka pipeline, mounted where -f points.
	fileArg := flagValue(med.Command, "-f")
	var mounted []string
	for _, v := range med.Volumes {
		if v.Target == fileArg {
			mounted = append(mounted, v.Source)
		}
	}
	want, _ := filepath.Abs(kafkaPipeline)
	if len(mounted) != 1 || mounted[0] != want {
		t.Fatalf("medallion mounts %v at %s, want only %s", mounted, fileArg, want)
	}

	// The pipeline consumes the topic kafka-init creates, at the address
	// the broker advertises to the other services.
	environment := map[string]string{}
	for k, v := range med.Environment {
		if v != nil {
			environment[k] = *v
		}
	}
	pl, err := parsePipeline(kafkaPipeline, readFile(t, kafkaPipeline), environment)
	if err != nil {
		t.Fatalf("%s with medallion's environment: %v", kafkaPipeline, err)
	}
	src := pl.Sources["meters"]
	if src == nil || src.Broker == nil || src.Broker.Kind != "kafka" {
		t.Fatalf("%s: the meters source reads no Kafka topic", kafkaPipeline)
	}
	advertised := env(kafka, "KAFKA_ADVERTISED_LISTENERS")
	for _, b := range src.Broker.Brokers {
		if !strings.Contains(advertised, "://"+b) {
			t.Errorf("the pipeline's broker %s is not one kafka advertises (%s)", b, advertised)
		}
	}
	initCmd := strings.Join(init.Command, " ")
	if flagValue(init.Command, "--topic") != src.Broker.Topic || !strings.Contains(initCmd, "--create") {
		t.Errorf("kafka-init (%s) does not create the topic %q the pipeline reads", initCmd, src.Broker.Topic)
	}
	if b := flagValue(init.Command, "--bootstrap-server"); !slices.Contains(src.Broker.Brokers, b) {
		t.Errorf("kafka-init talks to %s, the pipeline to %v", b, src.Broker.Brokers)
	}
}

// TestKafkaPipelineMatches keeps the Kafka pipeline the example pipeline
// plus the source's from: and batch: lines, so that the two do not drift.
func TestKafkaPipelineMatches(t *testing.T) {
	strip := func(path string) []string {
		var out []string
		for _, l := range strings.Split(string(readFile(t, path)), "\n") {
			if strings.HasPrefix(l, "#") || strings.HasPrefix(strings.TrimSpace(l), "from: {kafka:") || strings.HasPrefix(strings.TrimSpace(l), "batch:") {
				continue
			}
			out = append(out, l)
		}
		return out
	}
	base, kafka := strip(pipelineFile), strip(kafkaPipeline)
	if !slices.Equal(base, kafka) {
		for i := range min(len(base), len(kafka)) {
			if base[i] != kafka[i] {
				t.Fatalf("%s differs from %s beyond the Kafka lines, first at line %d:\n%q\n%q", kafkaPipeline, pipelineFile, i+1, base[i], kafka[i])
			}
		}
		t.Fatalf("%s and %s differ in length beyond the Kafka lines", kafkaPipeline, pipelineFile)
	}
}
