package deploy_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

const k8sDir = "k8s"

// k8sObject is one manifest document; Spec is decoded by kind.
type k8sObject struct {
	File       string
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec       yaml.Node         `yaml:"spec"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
}

type podTemplate struct {
	Metadata struct {
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Spec podSpec `yaml:"spec"`
}

type podSpec struct {
	TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               struct {
		RunAsNonRoot *bool `yaml:"runAsNonRoot"`
		RunAsUser    int   `yaml:"runAsUser"`
	} `yaml:"securityContext"`
	Containers []container `yaml:"containers"`
	Volumes    []struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
		EmptyDir *struct {
			SizeLimit string `yaml:"sizeLimit"`
		} `yaml:"emptyDir"`
	} `yaml:"volumes"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
	} `yaml:"httpGet"`
}

type container struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Env   []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name     string `yaml:"name"`
				Key      string `yaml:"key"`
				Optional bool   `yaml:"optional"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	EnvFrom []struct {
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type deploymentSpec struct {
	Replicas int `yaml:"replicas"`
	Selector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	Template podTemplate `yaml:"template"`
}

type cronJobSpec struct {
	Schedule          string `yaml:"schedule"`
	ConcurrencyPolicy string `yaml:"concurrencyPolicy"`
	JobTemplate       struct {
		Spec struct {
			Template podTemplate `yaml:"template"`
		} `yaml:"spec"`
	} `yaml:"jobTemplate"`
}

type serviceSpec struct {
	Selector map[string]string `yaml:"selector"`
	Ports    []struct {
		Port       int    `yaml:"port"`
		TargetPort string `yaml:"targetPort"`
	} `yaml:"ports"`
}

// decodeDocs decodes every document of a multi-document YAML stream.
func decodeDocs(t *testing.T, name string, data []byte) []*k8sObject {
	t.Helper()
	var out []*k8sObject
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var o k8sObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if o.Kind == "" {
			continue // an empty document
		}
		o.File = name
		out = append(out, &o)
	}
}

func specOf[T any](t *testing.T, o *k8sObject) *T {
	t.Helper()
	var s T
	if err := o.Spec.Decode(&s); err != nil {
		t.Fatalf("%s: %s %s: spec: %v", o.File, o.Kind, o.Metadata.Name, err)
	}
	return &s
}

// loadK8s reads every manifest of deploy/k8s but the kustomization, keyed
// by kind.
func loadK8s(t *testing.T) (map[string]*k8sObject, []string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	byKind := map[string]*k8sObject{}
	var names []string
	for _, f := range files {
		if path.Base(f) == "kustomization.yaml" {
			continue
		}
		names = append(names, path.Base(f))
		for _, o := range decodeDocs(t, f, readFile(t, f)) {
			if prev := byKind[o.Kind]; prev != nil {
				t.Errorf("two %s objects: %s in %s and %s in %s", o.Kind, prev.Metadata.Name, prev.File, o.Metadata.Name, o.File)
			}
			byKind[o.Kind] = o
		}
	}
	return byKind, names
}

// configMapText is deploy/k8s/configmap.yaml for the pipeline file data.
func configMapText(data []byte) string {
	var b strings.Builder
	b.WriteString(`# deploy/medallion.yaml as a ConfigMap, byte for byte. Do not edit it here:
# edit deploy/medallion.yaml, then run ` + "`go test ./deploy -update`" + `.
apiVersion: v1
kind: ConfigMap
metadata:
  name: medallion-pipeline
  labels: {app.kubernetes.io/name: medallion}
data:
  medallion.yaml: |
`)
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if strings.TrimSpace(line) != "" {
			b.WriteString("    ")
		}
		b.WriteString(line)
	}
	return b.String()
}

func TestK8s(t *testing.T) {
	pipeline := readFile(t, pipelineFile)
	cmPath := filepath.Join(k8sDir, "configmap.yaml")
	if *update {
		if err := os.WriteFile(cmPath, []byte(configMapText(pipeline)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	objs, files := loadK8s(t)
	wantKinds := []string{"ConfigMap", "CronJob", "Deployment", "Secret", "Service"}
	if got := sortedKeys(objs); !slices.Equal(got, wantKinds) {
		t.Fatalf("kinds in %s: %v, want %v", k8sDir, got, wantKinds)
	}

	// The kustomization lists every manifest.
	var kust struct {
		Resources []string `yaml:"resources"`
	}
	if err := yaml.Unmarshal(readFile(t, filepath.Join(k8sDir, "kustomization.yaml")), &kust); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	res := slices.Sorted(slices.Values(kust.Resources))
	if !slices.Equal(res, files) {
		t.Errorf("kustomization.yaml lists %v, the folder has %v", res, files)
	}

	// The ConfigMap is the example pipeline, byte for byte.
	cm := objs["ConfigMap"]
	if cm.Data[pipelineFile] != string(pipeline) {
		t.Errorf("%s's %s differs from deploy/%s: run `go test ./deploy -update`", cmPath, pipelineFile, pipelineFile)
	}
	secret := objs["Secret"]
	if !strings.Contains(string(readFile(t, filepath.Join(k8sDir, "secret.example.yaml"))), "EXAMPLE") {
		t.Error("secret.example.yaml does not say it is an example")
	}

	dep := specOf[deploymentSpec](t, objs["Deployment"])
	cron := specOf[cronJobSpec](t, objs["CronJob"])
	svc := specOf[serviceSpec](t, objs["Service"])

	// Labels and selectors.
	podLabels := dep.Template.Metadata.Labels
	if !subset(dep.Selector.MatchLabels, podLabels) {
		t.Errorf("Deployment selector %v does not match its pod labels %v", dep.Selector.MatchLabels, podLabels)
	}
	if !subset(svc.Selector, podLabels) {
		t.Errorf("Service selector %v does not match the Deployment's pods %v", svc.Selector, podLabels)
	}
	if subset(svc.Selector, cron.JobTemplate.Spec.Template.Metadata.Labels) {
		t.Errorf("Service selector %v also matches the CronJob's pods, which serve no HTTP", svc.Selector)
	}
	if subset(dep.Selector.MatchLabels, cron.JobTemplate.Spec.Template.Metadata.Labels) {
		t.Errorf("Deployment selector %v also matches the CronJob's pods", dep.Selector.MatchLabels)
	}

	// serve: two replicas, probes, resources, security, metrics.
	if dep.Replicas != 2 {
		t.Errorf("Deployment replicas %d, want 2", dep.Replicas)
	}
	ann := dep.Template.Metadata.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/path"] != "/metrics" || ann["prometheus.io/port"] == "" {
		t.Errorf("Deployment pods lack the Prometheus annotations: %v", ann)
	}
	if g := dep.Template.Spec.TerminationGracePeriodSeconds; g == nil || *g <= 45 {
		t.Errorf("terminationGracePeriodSeconds must exceed serve's 45 s SIGTERM drain")
	}
	serve := checkPod(t, "Deployment", &dep.Template.Spec, cm, secret)
	if serve.ReadinessProbe == nil || serve.ReadinessProbe.HTTPGet == nil || serve.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Error("Deployment: no readinessProbe on /readyz")
	}
	if serve.LivenessProbe == nil || serve.LivenessProbe.HTTPGet == nil || serve.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Error("Deployment: no livenessProbe on /healthz")
	}
	if len(serve.Args) == 0 || serve.Args[0] != "serve" {
		t.Errorf("Deployment runs %v, want serve", serve.Args)
	}

	// The batch variant.
	if cron.ConcurrencyPolicy != "Forbid" {
		t.Errorf("CronJob concurrencyPolicy %q, want Forbid", cron.ConcurrencyPolicy)
	}
	batch := checkPod(t, "CronJob", &cron.JobTemplate.Spec.Template.Spec, cm, secret)
	if len(batch.Args) == 0 || batch.Args[0] != "run" {
		t.Errorf("CronJob runs %v, want run", batch.Args)
	}
}

// checkPod checks what the serve and run pods share: the pinned image, the
// pipeline file from the ConfigMap, every variable it needs set (secrets
// from keys the example Secret has), the file parsing with that
// environment, non-root with a read-only root and writable emptyDirs for
// DuckDB's temp directory and the cache, resources. It returns the
// medallion container.
func checkPod(t *testing.T, what string, pod *podSpec, cm, secret *k8sObject) *container {
	t.Helper()
	if len(pod.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", what, len(pod.Containers))
	}
	c := &pod.Containers[0]
	if why := imagePinned(c.Image); why != "" {
		t.Errorf("%s: image %q: %s", what, c.Image, why)
	}
	if r := pod.SecurityContext.RunAsNonRoot; r == nil || !*r {
		t.Errorf("%s: pod securityContext lacks runAsNonRoot: true", what)
	}
	if r := c.SecurityContext.ReadOnlyRootFilesystem; r == nil || !*r {
		t.Errorf("%s: container securityContext lacks readOnlyRootFilesystem: true", what)
	}
	if a := c.SecurityContext.AllowPrivilegeEscalation; a == nil || *a {
		t.Errorf("%s: container securityContext lacks allowPrivilegeEscalation: false", what)
	}
	if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
		t.Errorf("%s: resources want cpu and memory requests and a memory limit, have %+v", what, c.Resources)
	}

	mounts := map[string]string{} // mount path -> volume name
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	volumes := map[string]int{}
	for i, v := range pod.Volumes {
		volumes[v.Name] = i
	}
	// The pipeline file comes from the ConfigMap.
	file := flagValue(c.Args, "-f")
	vol, ok := mounts[path.Dir(file)]
	if !ok {
		t.Fatalf("%s: -f %s: nothing is mounted at %s", what, file, path.Dir(file))
	}
	if v := pod.Volumes[volumes[vol]]; v.ConfigMap == nil || v.ConfigMap.Name != cm.Metadata.Name {
		t.Errorf("%s: %s is not mounted from ConfigMap %s", what, path.Dir(file), cm.Metadata.Name)
	}
	if _, ok := cm.Data[path.Base(file)]; !ok {
		t.Errorf("%s: -f %s: ConfigMap %s has no key %s (has %v)", what, file, cm.Metadata.Name, path.Base(file), sortedKeys(cm.Data))
	}

	// The environment the pipeline sees.
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v, ok := secret.StringData[ref.Key]
			if ref.Name != secret.Metadata.Name || !ok {
				if !ref.Optional {
					t.Errorf("%s: %s comes from key %s of Secret %s, which secret.example.yaml (Secret %s) does not have", what, e.Name, ref.Key, ref.Name, secret.Metadata.Name)
				}
				continue
			}
			env[e.Name] = v
		}
	}
	for _, ef := range c.EnvFrom {
		if ef.SecretRef != nil && ef.SecretRef.Name == secret.Metadata.Name {
			for k, v := range secret.StringData {
				env[k] = v
			}
		}
	}
	all, _ := pipelineVars(t)
	for _, v := range all {
		if _, ok := env[v]; !ok {
			t.Errorf("%s: %s refers to ${%s}, which the container does not set", what, pipelineFile, v)
		}
	}
	if _, err := parsePipeline("ConfigMap "+cm.Metadata.Name, []byte(cm.Data[path.Base(file)]), env); err != nil {
		t.Errorf("%s: the pipeline does not load with the container's environment: %v", what, err)
	}

	// Writable scratch space under a read-only root: DuckDB spills under
	// TMPDIR, lake objects are cached in MEDALLION_CACHE.
	for _, dir := range []string{env["TMPDIR"], env["MEDALLION_CACHE"]} {
		if dir == "" {
			t.Errorf("%s: TMPDIR and MEDALLION_CACHE must be set (the root filesystem is read-only)", what)
			continue
		}
		vol, ok := mounts[dir]
		if !ok || pod.Volumes[volumes[vol]].EmptyDir == nil {
			t.Errorf("%s: %s is not an emptyDir mount", what, dir)
		}
	}
	return c
}

// TestKustomizeBuild renders the kustomization with kustomize's own
// library (what `kubectl kustomize` runs): every resource loads and the
// image is set. It needs no kubectl on the machine.
func TestKustomizeBuild(t *testing.T) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), k8sDir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", k8sDir, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatalf("kustomize build %s: %v", k8sDir, err)
	}
	objs := decodeDocs(t, "kustomize output", out)
	if len(objs) != 5 {
		t.Errorf("kustomize rendered %d objects, want 5", len(objs))
	}
	for _, o := range objs {
		if o.Kind == "Deployment" {
			img := specOf[deploymentSpec](t, o).Template.Spec.Containers[0].Image
			if why := imagePinned(img); why != "" {
				t.Errorf("rendered Deployment image %q: %s", img, why)
			}
		}
	}
}
