package config

import (
	"embed"
	"fmt"
	"slices"
	"strings"
)

//go:embed templates/*.yaml
var templates embed.FS

// TemplateInfo describes one pipeline `medallion init --template` writes.
type TemplateInfo struct {
	Name   string // the template's name: a kind `medallion generate` makes
	Source string // the source its sample data is ingested into
	File   string // the sample file name its first steps use
}

// templateInfos lists the templates; energy is the starter pipeline.
var templateInfos = []TemplateInfo{
	{Name: "ecommerce", Source: "events", File: "events.csv"},
	{Name: "energy", Source: "meters", File: "meters.ndjson"},
	{Name: "sensor", Source: "sensor", File: "sensor.ndjson"},
	{Name: "turnstile", Source: "turnstile", File: "turnstile.csv"},
}

// Templates lists the pipeline templates, one per sample data kind.
func Templates() []TemplateInfo { return slices.Clone(templateInfos) }

// Template returns the pipeline file of a template, commented for a first
// read, and what it is. Like Starter, it has exactly one line starting
// with "lake:". Each call returns a fresh copy.
func Template(name string) ([]byte, TemplateInfo, error) {
	i := slices.IndexFunc(templateInfos, func(t TemplateInfo) bool { return t.Name == name })
	if i < 0 {
		names := make([]string, len(templateInfos))
		for j, t := range templateInfos {
			names[j] = t.Name
		}
		return nil, TemplateInfo{}, fmt.Errorf("unknown template %q (want %s)%s", name, strings.Join(names, ", "), didYouMean(name, names))
	}
	if name == "energy" {
		return Starter(), templateInfos[i], nil
	}
	b, err := templates.ReadFile("templates/" + name + ".yaml")
	if err != nil {
		return nil, TemplateInfo{}, fmt.Errorf("read template %s: %w", name, err)
	}
	return b, templateInfos[i], nil
}
