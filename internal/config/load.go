package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DefaultFile is the pipeline file looked for in the working directory.
const DefaultFile = "medallion.yaml"

// Find returns the pipeline file to load: explicit (the -f flag) when
// given, else ./medallion.yaml. The error when there is none says what to
// do, and errors.Is(err, fs.ErrNotExist) holds for it.
func Find(explicit string) (string, error) {
	if explicit != "" {
		fi, err := os.Stat(explicit)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", &notFoundError{fmt.Sprintf("pipeline file %s does not exist: check the -f path, or run `medallion init -f %s`", explicit, explicit)}
		case err != nil:
			return "", fmt.Errorf("find pipeline file: %w", err)
		case fi.IsDir():
			return "", fmt.Errorf("%s is a directory: -f wants the pipeline file, e.g. %s", explicit, filepath.Join(explicit, DefaultFile))
		}
		return explicit, nil
	}
	_, err := os.Stat(DefaultFile)
	if err == nil {
		return DefaultFile, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("find pipeline file: %w", err)
	}
	dir, derr := os.Getwd()
	if derr != nil {
		dir = "."
	}
	if _, err := os.Stat("medallion.yml"); err == nil {
		return "", &notFoundError{fmt.Sprintf("no %s in %s (there is a medallion.yml: rename it, or pass -f medallion.yml)", DefaultFile, dir)}
	}
	return "", &notFoundError{fmt.Sprintf("no %s in %s: run `medallion init` or pass -f FILE", DefaultFile, dir)}
}

// notFoundError is Find's error: a message for users that is also fs.ErrNotExist.
type notFoundError struct{ msg string }

func (e *notFoundError) Error() string { return e.msg }
func (e *notFoundError) Unwrap() error { return fs.ErrNotExist }

// Load reads, expands and validates the pipeline file at path, taking
// ${VAR} values from the process environment.
//
// Problems in the file come back as *Error values naming the file, line,
// column and key path. When there are several, they are joined one per
// line in file order, so the first line of err.Error() is the first
// problem and errors.As(err, &e) yields it.
func Load(path string) (*Pipeline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read pipeline file: %w", err)
	}
	p, err := Parse(path, data, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	p.Path = path
	return p, nil
}

// Parse decodes and validates a pipeline file's contents; name is used in
// error messages. env looks up ${VAR} values (os.LookupEnv in Load; nil
// means no variable is set). Errors are as for Load.
//
// Decoding is strict: unknown keys, values of the wrong type, duplicate keys
// and more than one YAML document are errors. ${VAR} references are
// expanded inside each value before it is typed, so a variable's value can
// never change the structure of the file (a secret containing ": " or "#"
// stays one string).
func Parse(name string, data []byte, env func(string) (string, bool)) (*Pipeline, error) {
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	l := &loader{file: name, src: data, lines: lineStarts(data), env: env, nodes: map[string]*yaml.Node{}}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	err := decodeNode(dec, &doc)
	if err == io.EOF {
		// An empty file: every default, no tables.
		return Defaults(), nil
	}
	if err != nil {
		return nil, l.yamlError(err)
	}
	var extra yaml.Node
	switch err := decodeNode(dec, &extra); {
	case err == nil:
		return nil, &Error{File: name, Line: extra.Line, Column: extra.Column, Msg: "a second YAML document: the pipeline file holds one (remove the ---)"}
	case err != io.EOF:
		return nil, l.yamlError(err)
	}

	p := Defaults()
	root := &doc
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		root = doc.Content[0]
	}
	if r := l.deref(root); !isNull(r) && r.Kind != yaml.MappingNode {
		return nil, &Error{File: name, Line: r.Line, Column: r.Column, Msg: "expected a mapping of settings (lake, sources, silver, gold, ...), got " + describe(r, r.Value)}
	}
	l.decodePipeline(root, p)
	if len(l.errs) == 0 {
		l.validate(p)
	}
	if err := joinErrors(l.errs); err != nil {
		return nil, err
	}
	return p, nil
}

// decodeNode reads one document, turning a panic in the YAML library into an error.
func decodeNode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: cannot parse the file: %v", r)
		}
	}()
	return dec.Decode(n)
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError turns a YAML syntax error into an *Error with its line. The YAML
// library gives the line only inside its message, so this is the one place
// that reads an error's text.
func (l *loader) yamlError(err error) error {
	if e := l.unquotedVarInFlow(); e != nil {
		return e
	}
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: l.file, Line: line, Msg: "bad YAML: " + m[2]}
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	return &Error{File: l.file, Msg: "bad YAML: " + msg}
}

// flowVar finds a ${VAR} written bare inside a {...} or [...] flow
// collection, where '{' is YAML syntax: the YAML library then reports a
// confusing error on the line where the collection starts.
var flowVar = regexp.MustCompile(`[{\[,]\s*[A-Za-z_][\w-]*:\s*(\$\{)|[{\[,]\s*(\$\{)`)

// unquotedVarInFlow names the line and column of the first such ${VAR},
// with the fix, or returns nil when there is none.
func (l *loader) unquotedVarInFlow() *Error {
	for i, line := range strings.Split(string(l.src), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		m := flowVar.FindStringSubmatchIndex(line)
		if m == nil {
			continue
		}
		col := m[2]
		if col < 0 {
			col = m[4]
		}
		end := strings.IndexByte(line[col:], '}')
		v := line[col:]
		if end >= 0 {
			v = line[col : col+end+1]
		}
		return &Error{File: l.file, Line: i + 1, Column: col + 1,
			Msg: fmt.Sprintf("bad YAML: %s inside {...} or [...] must be quoted: \"%s\" (or write the section in block style)", v, v)}
	}
	return nil
}
