package deploy_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"go.yaml.in/yaml/v3"
)

const composeFile = "compose/docker-compose.yml"

// composeService is the part of a compose service the tests read.
type composeService struct {
	Image       string            `yaml:"image"`
	Build       *composeBuild     `yaml:"build"`
	Command     []string          `yaml:"command"`
	Entrypoint  []string          `yaml:"entrypoint"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	StopGracePeriod string `yaml:"stop_grace_period"`
}

type composeBuild struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

type composeProject struct {
	Services map[string]*composeService `yaml:"services"`
	Volumes  map[string]any             `yaml:"volumes"`
}

func loadCompose(t *testing.T) *composeProject {
	t.Helper()
	var c composeProject
	if err := yaml.Unmarshal(readFile(t, composeFile), &c); err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	return &c
}

// composePath resolves a path of the compose file (relative to its folder)
// to one relative to deploy/.
func composePath(p string) string { return filepath.Join(filepath.Dir(composeFile), p) }

// mount is one volume entry: a bind mount when Host is a path.
type mount struct{ Host, Target string }

func parseMount(v string) mount {
	parts := strings.Split(v, ":")
	if len(parts) < 2 {
		return mount{Target: parts[0]}
	}
	return mount{Host: parts[0], Target: parts[1]}
}

func (m mount) bind() bool { return strings.HasPrefix(m.Host, ".") || strings.HasPrefix(m.Host, "/") }

func TestCompose(t *testing.T) {
	c := loadCompose(t)
	for _, name := range []string{"minio", "minio-init", "postgres", "medallion", "grafana"} {
		if c.Services[name] == nil {
			t.Fatalf("%s: no service %q (have %v)", composeFile, name, sortedKeys(c.Services))
		}
	}
	hostPorts := map[string]string{}
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		if s.Build == nil {
			if why := imagePinned(s.Image); why != "" {
				t.Errorf("service %s: image %q: %s; pin a release", name, s.Image, why)
			}
		}
		for dep, d := range s.DependsOn {
			target := c.Services[dep]
			switch {
			case target == nil:
				t.Errorf("service %s depends on %q, which is not a service", name, dep)
			case d.Condition == "service_healthy" && target.Healthcheck == nil:
				t.Errorf("service %s waits for %s to be healthy, which has no healthcheck", name, dep)
			case d.Condition == "":
				t.Errorf("service %s depends on %s with no condition: up would not wait for it", name, dep)
			}
		}
		for _, p := range s.Ports {
			// [ip:]host:container
			parts := strings.Split(p, ":")
			host := strings.Join(parts[:len(parts)-1], ":")
			if !strings.Contains(host, ":") {
				host = "0.0.0.0:" + host
			}
			port := host[strings.LastIndex(host, ":")+1:]
			for other, by := range hostPorts {
				if other[strings.LastIndex(other, ":")+1:] == port && (other == host || strings.HasPrefix(other, "0.0.0.0:") || strings.HasPrefix(host, "0.0.0.0:")) {
					t.Errorf("host port %s of service %s collides with %s of service %s", host, name, other, by)
				}
			}
			hostPorts[host] = name
		}
		for _, v := range s.Volumes {
			m := parseMount(v)
			if !m.bind() {
				if _, ok := c.Volumes[m.Host]; !ok && m.Host != "" {
					t.Errorf("service %s mounts volume %q, not declared under volumes:", name, m.Host)
				}
				continue
			}
			if _, err := os.Stat(composePath(m.Host)); err != nil {
				t.Errorf("service %s mounts %s: %v", name, m.Host, err)
			}
		}
	}
	// Healthchecks on what others wait for, and the order of `up`.
	for _, name := range []string{"minio", "postgres", "medallion"} {
		if c.Services[name].Healthcheck == nil {
			t.Errorf("service %s has no healthcheck", name)
		}
	}
	med := c.Services["medallion"]
	wantDeps := map[string]string{"minio": "service_healthy", "minio-init": "service_completed_successfully", "postgres": "service_healthy"}
	for dep, cond := range wantDeps {
		if med.DependsOn[dep].Condition != cond {
			t.Errorf("medallion depends on %s with %q, want %s", dep, med.DependsOn[dep].Condition, cond)
		}
	}
	if !strings.Contains(strings.Join(med.Healthcheck.Test, " "), "/readyz") {
		t.Errorf("medallion's healthcheck %v does not ask /readyz", med.Healthcheck.Test)
	}
	if med.StopGracePeriod == "" {
		t.Errorf("medallion: no stop_grace_period: compose's 10 s default cuts serve's 45 s SIGTERM drain short")
	}

	// The image is built from the repository with a multi-stage cgo Dockerfile.
	if med.Build == nil {
		t.Fatal("medallion has no build: section")
	}
	ctx := composePath(med.Build.Context)
	if _, err := os.Stat(filepath.Join(ctx, "go.mod")); err != nil {
		t.Errorf("medallion's build context %s is not the repository root: %v", med.Build.Context, err)
	}
	checkDockerfile(t, filepath.Join(ctx, med.Build.Dockerfile))

	// serve runs the mounted example pipeline.
	if len(med.Command) == 0 || med.Command[0] != "serve" {
		t.Errorf("medallion's command %v does not run serve", med.Command)
	}
	fileArg := flagValue(med.Command, "-f")
	mountedPipeline := false
	for _, v := range med.Volumes {
		m := parseMount(v)
		if m.Target == fileArg {
			mountedPipeline = true
			if filepath.Clean(composePath(m.Host)) != pipelineFile {
				t.Errorf("medallion mounts %s at %s, want the example pipeline %s", m.Host, m.Target, pipelineFile)
			}
		}
	}
	if !mountedPipeline {
		t.Errorf("medallion runs -f %q, which no volume mounts", fileArg)
	}
	all, _ := pipelineVars(t)
	for _, v := range all {
		if _, ok := med.Environment[v]; !ok {
			t.Errorf("%s refers to ${%s}, which the medallion service does not set", pipelineFile, v)
		}
	}
	// The lake's bucket is the one minio-init creates, with the keys MinIO has.
	u, err := url.Parse(med.Environment["MEDALLION_LAKE"])
	if err != nil || u.Scheme != "s3" {
		t.Fatalf("medallion's MEDALLION_LAKE %q is not an s3:// URL", med.Environment["MEDALLION_LAKE"])
	}
	initCmd := strings.Join(append(slices.Clone(c.Services["minio-init"].Entrypoint), c.Services["minio-init"].Command...), " ")
	if !strings.Contains(initCmd, "mc mb") || !strings.Contains(initCmd, "/"+u.Host) {
		t.Errorf("minio-init (%s) does not create the lake's bucket %q", initCmd, u.Host)
	}
	minio := c.Services["minio"].Environment
	if med.Environment["S3_ACCESS_KEY"] != minio["MINIO_ROOT_USER"] || med.Environment["S3_SECRET_KEY"] != minio["MINIO_ROOT_PASSWORD"] {
		t.Errorf("medallion's S3 keys (%s, %s) are not MinIO's (%s, %s)", med.Environment["S3_ACCESS_KEY"],
			med.Environment["S3_SECRET_KEY"], minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"])
	}
	if ep := med.Environment["S3_ENDPOINT"]; !strings.HasPrefix(ep, "minio:") {
		t.Errorf("medallion's S3_ENDPOINT %q is not the minio service", ep)
	}
	if dsn := med.Environment["DATABASE_URL"]; !strings.Contains(dsn, "@postgres:5432/"+c.Services["postgres"].Environment["POSTGRES_DB"]) {
		t.Errorf("medallion's DATABASE_URL %q is not the postgres service's database", dsn)
	}
}

// flagValue returns the argument after name in args ("" when absent).
func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// checkDockerfile checks the image build: multi-stage, cgo on, base images
// pinned, a non-root numeric user.
func checkDockerfile(t *testing.T, name string) {
	t.Helper()
	text := string(readFile(t, name))
	var froms []string
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && strings.EqualFold(f[0], "FROM") {
			froms = append(froms, f[1])
		}
	}
	if len(froms) < 2 {
		t.Errorf("%s: %d stages, want a multi-stage build", name, len(froms))
	}
	for _, img := range froms {
		if why := imagePinned(img); why != "" {
			t.Errorf("%s: FROM %s: %s", name, img, why)
		}
	}
	if !strings.Contains(text, "CGO_ENABLED=1") {
		t.Errorf("%s does not build with CGO_ENABLED=1 (DuckDB needs cgo)", name)
	}
	if !regexpUser.MatchString(text) {
		t.Errorf("%s: no numeric non-root USER (Kubernetes' runAsNonRoot needs one)", name)
	}
	// BuildKit reads <Dockerfile>.dockerignore: without it .git and .bin
	// are sent as build context.
	if _, err := os.Stat(name + ".dockerignore"); err != nil {
		t.Errorf("%s: %v", name, err)
	}
}

var regexpUser = regexp.MustCompile(`(?m)^USER\s+[1-9][0-9]*`)

// TestComposeConfig loads the file with the Compose specification's own
// loader (the library behind `docker compose config`): schema validation,
// interpolation of every ${VAR:-default}, and the cross-references between
// services, volumes and depends_on. It needs no Docker on the machine.
func TestComposeConfig(t *testing.T) {
	abs, err := filepath.Abs(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{abs}, cli.WithWorkingDirectory(filepath.Dir(abs)), cli.WithInterpolation(true))
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("%s does not load as a Compose project: %v", composeFile, err)
	}
	for _, name := range []string{"minio", "postgres", "medallion", "grafana"} {
		if _, err := p.GetService(name); err != nil {
			t.Errorf("%s: %v", composeFile, err)
		}
	}
}
