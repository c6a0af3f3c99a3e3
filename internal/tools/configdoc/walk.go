package main

import (
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// key is one key of the pipeline file, as the decoder reads it.
type key struct {
	name      string
	parent    *key
	typ       string       // what the value is: string, bool, duration, mapping...
	comment   string       // the decoder's own comment above its field{...}
	fields    []*types.Var // struct fields the value is stored in
	shorthand string       // a scalar value stands for this child key
	list      bool         // a list of mappings, each with the children as keys
	elem      *types.TypeName
	children  []*key
}

// path is the key's dotted place in the file, e.g. sources.<source>.csv.
func (k *key) path() string {
	if k.parent == nil || k.parent.name == "" {
		return k.name
	}
	sep := "."
	if k.parent.list {
		sep = "[]."
	}
	return k.parent.path() + sep + k.name
}

// readers are the loader's scalar readers and the type each reads.
var readers = map[string]string{
	"str":      "string",
	"boolean":  "bool",
	"integer":  "integer",
	"number":   "number",
	"duration": "duration",
	"size":     "size",
	"strs":     "list of strings",
}

// placeholders name the entries of a mapping keyed by user names, by the
// type each entry becomes.
var placeholders = map[string]string{
	"Silver": "table", "Gold": "table", "Schedule": "job", "Derived": "column", "Aggregate": "column",
}

// walker reads the config package's decoder and types.
type walker struct {
	fset     *token.FileSet
	files    []*ast.File
	info     *types.Info
	methods  map[string]*ast.FuncDecl      // loader methods by name
	closures map[types.Object]*ast.FuncLit // local func values (decodeFlag := func...)
	fieldDoc map[*types.Var]string
	owner    map[*types.Var]*types.TypeName
	typeDoc  map[*types.TypeName]string
	comments map[string]map[int]string // file -> last line of a comment group -> its text
	active   map[ast.Node]bool         // bodies being walked (recursion guard)
}

// load parses and type-checks the package in dir.
func load(dir string) (*walker, error) {
	w := &walker{
		fset: token.NewFileSet(), methods: map[string]*ast.FuncDecl{}, closures: map[types.Object]*ast.FuncLit{},
		fieldDoc: map[*types.Var]string{}, owner: map[*types.Var]*types.TypeName{}, typeDoc: map[*types.TypeName]string{},
		comments: map[string]map[int]string{}, active: map[ast.Node]bool{},
	}
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	sort.Strings(names)
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(w.fset, n, nil, parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("parse config package: %w", err)
		}
		w.files = append(w.files, f)
	}
	w.info = &types.Info{
		Defs: map[*ast.Ident]types.Object{}, Uses: map[*ast.Ident]types.Object{},
		Types: map[ast.Expr]types.TypeAndValue{}, Selections: map[*ast.SelectorExpr]*types.Selection{},
	}
	conf := types.Config{Importer: importer.ForCompiler(w.fset, "source", nil)}
	if _, err := conf.Check("config", w.fset, w.files, w.info); err != nil {
		return nil, fmt.Errorf("type-check config package: %w", err)
	}
	for _, f := range w.files {
		w.index(f)
	}
	return w, nil
}

// index records the loader's methods, the docs of types and fields, local
// closures and the decoder's comments of one file.
func (w *walker) index(f *ast.File) {
	file := w.fset.File(f.Pos()).Name()
	w.comments[file] = map[int]string{}
	for _, c := range f.Comments {
		w.comments[file][w.fset.Position(c.End()).Line] = c.Text()
	}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv != nil && d.Body != nil {
				w.methods[d.Name.Name] = d
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				if ts, ok := s.(*ast.TypeSpec); ok {
					w.indexType(d, ts)
				}
			}
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		if a, ok := n.(*ast.AssignStmt); ok && len(a.Lhs) == 1 && len(a.Rhs) == 1 {
			if lit, ok := a.Rhs[0].(*ast.FuncLit); ok {
				if id, ok := a.Lhs[0].(*ast.Ident); ok && w.info.Defs[id] != nil {
					w.closures[w.info.Defs[id]] = lit
				}
			}
		}
		return true
	})
}

func (w *walker) indexType(d *ast.GenDecl, ts *ast.TypeSpec) {
	tn, _ := w.info.Defs[ts.Name].(*types.TypeName)
	if tn == nil {
		return
	}
	doc := ts.Doc.Text()
	if doc == "" && len(d.Specs) == 1 {
		doc = d.Doc.Text()
	}
	w.typeDoc[tn] = doc
	st, ok := ts.Type.(*ast.StructType)
	if !ok {
		return
	}
	for _, fld := range st.Fields.List {
		text := strings.TrimSpace(fld.Doc.Text() + " " + fld.Comment.Text())
		for _, name := range fld.Names {
			if v, ok := w.info.Defs[name].(*types.Var); ok {
				w.fieldDoc[v] = text
				w.owner[v] = tn
			}
		}
	}
}

// walk returns the key tree the decoder reads, from decodePipeline.
func (w *walker) walk() (*key, error) {
	root := &key{typ: "mapping"}
	d := w.methods["decodePipeline"]
	if d == nil {
		return nil, fmt.Errorf("no decodePipeline in the config package")
	}
	w.body(d.Body, root)
	if len(root.children) == 0 {
		return nil, fmt.Errorf("decodePipeline reads no keys")
	}
	return root, nil
}

// body records what the code in n reads into k: keys of objects, entries
// of name-keyed mappings, lists, scalar readers and the fields assigned.
func (w *walker) body(n ast.Node, k *key) {
	if w.active[n] {
		return
	}
	w.active[n] = true
	defer delete(w.active, n)
	ast.Inspect(n, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.CallExpr:
			return w.call(x, k)
		case *ast.RangeStmt:
			return w.rangeStmt(x, k)
		case *ast.AssignStmt:
			if len(x.Rhs) == 1 {
				if _, ok := x.Rhs[0].(*ast.FuncLit); ok {
					return false // a local closure: walked where it is called
				}
			}
			w.assign(x, k)
		case *ast.KeyValueExpr:
			if id, ok := x.Key.(*ast.Ident); ok && w.callsReader(x.Value) {
				if v, ok := w.info.Uses[id].(*types.Var); ok && v.IsField() {
					k.addField(v)
				}
			}
		}
		return true
	})
}

// call handles one call in a decoder body; it returns whether to look inside.
func (w *walker) call(x *ast.CallExpr, k *key) bool {
	if id, ok := x.Fun.(*ast.Ident); ok {
		if lit := w.closures[w.info.Uses[id]]; lit != nil {
			w.body(lit.Body, k)
		}
		return true
	}
	name := w.loaderMethod(x)
	switch {
	case name == "object":
		for _, a := range x.Args[2:] {
			w.fieldLit(a, k)
		}
		return false
	case name == "record":
		if b, ok := x.Args[0].(*ast.BinaryExpr); ok {
			if lit, ok := b.Y.(*ast.BasicLit); ok {
				s, _ := strconv.Unquote(lit.Value)
				k.shorthand = strings.TrimPrefix(s, ".")
			}
		}
		return false
	case readers[name] != "":
		if k.typ == "" {
			k.typ = readers[name]
		}
	case strings.HasPrefix(name, "decode") && w.methods[name] != nil:
		// decodeS3(n, path, &p.S3): the key fills that field.
		for _, a := range x.Args {
			if u, ok := a.(*ast.UnaryExpr); ok {
				a = u.X
			}
			if s, ok := a.(*ast.SelectorExpr); ok {
				if sel := w.info.Selections[s]; sel != nil && sel.Kind() == types.FieldVal && sel.Obj().Exported() {
					k.addField(sel.Obj().(*types.Var))
				}
			}
		}
		w.body(w.methods[name].Body, k)
	}
	return true
}

// fieldLit reads one field{"key", func...} of an object call.
func (w *walker) fieldLit(a ast.Expr, k *key) {
	cl, ok := a.(*ast.CompositeLit)
	if !ok || len(cl.Elts) != 2 {
		return
	}
	lit, ok1 := cl.Elts[0].(*ast.BasicLit)
	fn, ok2 := cl.Elts[1].(*ast.FuncLit)
	if !ok1 || !ok2 {
		return
	}
	name, _ := strconv.Unquote(lit.Value)
	child := &key{name: name, parent: k, comment: w.commentAbove(cl)}
	k.children = append(k.children, child)
	w.body(fn.Body, child)
	if len(child.children) > 0 && child.typ == "" {
		child.typ = "mapping"
	}
}

// commentAbove returns the comment group ending on the line before n.
func (w *walker) commentAbove(n ast.Node) string {
	p := w.fset.Position(n.Pos())
	return w.comments[p.Filename][p.Line-1]
}

// rangeStmt handles a loop over a mapping's entries (keys the user names)
// or over a list's items.
func (w *walker) rangeStmt(x *ast.RangeStmt, k *key) bool {
	if c, ok := x.X.(*ast.CallExpr); ok && w.loaderMethod(c) == "entries" {
		child := &key{parent: k}
		child.elem = w.entryType(x.Body)
		child.name = "<entry>"
		if child.elem != nil {
			name := child.elem.Name()
			if p, ok := placeholders[name]; ok {
				name = p
			}
			child.name = "<" + strings.ToLower(name) + ">"
		}
		k.children = append(k.children, child)
		k.typ = "mapping"
		w.body(x.Body, child)
		if len(child.children) > 0 && child.typ == "" {
			child.typ = "mapping"
		}
		return false
	}
	if s, ok := x.X.(*ast.SelectorExpr); ok && s.Sel.Name == "Content" {
		k.list = true
		k.typ = "list"
		w.body(x.Body, k)
		return false
	}
	return true
}

// entryType finds what each entry becomes: the type of the first value
// made from the entry's key (&Column{Name: e.key}, defaultSource(e.key)).
func (w *walker) entryType(body ast.Node) *types.TypeName {
	var found *types.TypeName
	ast.Inspect(body, func(n ast.Node) bool {
		if found != nil {
			return false
		}
		var args []ast.Expr
		switch x := n.(type) {
		case *ast.CompositeLit:
			for _, e := range x.Elts {
				if kv, ok := e.(*ast.KeyValueExpr); ok {
					args = append(args, kv.Value)
				}
			}
		case *ast.CallExpr:
			args = x.Args
		default:
			return true
		}
		for _, a := range args {
			if found == nil && usesEntryKey(a) {
				found = named(w.info.TypeOf(n.(ast.Expr)))
			}
		}
		return true
	})
	return found
}

// usesEntryKey reports whether e reads the entry's key (e.key, e.keyNode.Line).
func usesEntryKey(e ast.Expr) bool {
	found := false
	ast.Inspect(e, func(n ast.Node) bool {
		if s, ok := n.(*ast.SelectorExpr); ok && (s.Sel.Name == "key" || s.Sel.Name == "keyNode") {
			found = true
		}
		return !found
	})
	return found
}

// named returns the named type of t or of what t points to.
func named(t types.Type) *types.TypeName {
	if p, ok := t.(*types.Pointer); ok {
		t = p.Elem()
	}
	if n, ok := t.(*types.Named); ok {
		return n.Obj()
	}
	return nil
}

// assign records the struct fields a decoder assignment stores a value
// in. A collection's append or index store belongs to the collection's key.
func (w *walker) assign(a *ast.AssignStmt, k *key) {
	for i, lhs := range a.Lhs {
		var rhs ast.Expr
		if len(a.Rhs) == len(a.Lhs) {
			rhs = a.Rhs[i]
		}
		target := k
		store := false
		if ix, ok := lhs.(*ast.IndexExpr); ok {
			lhs = ix.X
			store = true
			if k.parent != nil && strings.HasPrefix(k.name, "<") {
				target = k.parent
			}
		}
		sel, ok := lhs.(*ast.SelectorExpr)
		if !ok || rhs == nil {
			continue
		}
		s := w.info.Selections[sel]
		if s == nil || s.Kind() != types.FieldVal {
			continue
		}
		v := s.Obj().(*types.Var)
		if c, ok := rhs.(*ast.CallExpr); ok {
			if id, ok := c.Fun.(*ast.Ident); ok && id.Name == "append" {
				if strings.HasSuffix(v.Name(), "Order") {
					continue // declaration order bookkeeping (SourceOrder), not a key
				}
				if k.parent != nil && strings.HasPrefix(k.name, "<") {
					target = k.parent
				}
				target.addField(v)
				continue
			}
		}
		if store || w.readsValue(rhs) {
			target.addField(v)
		}
	}
}

// readsValue reports whether e holds a value read from the file: a call
// of a loader reader or decoder, or a plain value (b, &b, *f) of a basic type.
func (w *walker) readsValue(e ast.Expr) bool {
	if w.callsReader(e) {
		return true
	}
	switch x := e.(type) {
	case *ast.UnaryExpr:
		e = x.X
	case *ast.StarExpr:
		e = x.X
	}
	if id, ok := e.(*ast.Ident); ok {
		if _, isVar := w.info.Uses[id].(*types.Var); !isVar {
			return false // true, nil, a constant
		}
		t := w.info.TypeOf(id)
		if p, ok := t.(*types.Pointer); ok {
			t = p.Elem()
		}
		_, basic := t.(*types.Basic)
		return basic
	}
	return false
}

// callsReader reports whether e calls a loader reader or decoder.
func (w *walker) callsReader(e ast.Expr) bool {
	found := false
	ast.Inspect(e, func(n ast.Node) bool {
		if c, ok := n.(*ast.CallExpr); ok {
			if name := w.loaderMethod(c); readers[name] != "" || strings.HasPrefix(name, "decode") {
				found = true
			}
		}
		return !found
	})
	return found
}

// loaderMethod returns the name of the loader method x calls (l.str), or "".
func (w *walker) loaderMethod(x *ast.CallExpr) string {
	s, ok := x.Fun.(*ast.SelectorExpr)
	if !ok {
		return ""
	}
	sel := w.info.Selections[s]
	if sel == nil || sel.Kind() != types.MethodVal || named(sel.Recv()) == nil || named(sel.Recv()).Name() != "loader" {
		return ""
	}
	return s.Sel.Name
}

func (k *key) addField(v *types.Var) {
	for _, f := range k.fields {
		if f == v {
			return
		}
	}
	k.fields = append(k.fields, v)
}

// mustExist is a guard for the generator's input directory.
func mustExist(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "decode.go")); err != nil {
		return fmt.Errorf("%s is not the config package (no decode.go): %w", dir, err)
	}
	return nil
}
