package dashboard

import (
	"bytes"
	"fmt"
	"github.com/medallion-dev/medallion/internal/humanize"
	"html/template"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// pageNames are the page templates; each is parsed with layout.html.
var pageNames = []string{"pipeline.html", "table.html", "quality.html", "runs.html", "login.html", "error.html"}

func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"bytes":    humanize.Bytes,
		"count":    groupDigits,
		"ago":      ago,
		"utc":      func(t time.Time) string { return formatTime(t) },
		"duration": formatDuration,
		"cellText": cellText,
		"isNull":   func(v any) bool { return v == nil },
	}
	out := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/"+name)
		if err != nil {
			return nil, fmt.Errorf("dashboard: parse %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// layoutData is what layout.html reads from every page's data.
type layoutData interface{ title() string }

func (p loginPage) title() string { return p.Title }

// page wraps a page's data with what the layout shows.
type page struct {
	Title   string
	Nav     string // which nav link is current
	Lake    string
	Now     time.Time
	Content any
}

// render executes a page into a buffer first, so a template error becomes a
// clean 500 and not half a page.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	title := ""
	if ld, ok := data.(layoutData); ok {
		title = ld.title()
	}
	nav := ""
	switch {
	case r.URL.Path == "/" || strings.HasPrefix(r.URL.Path, "/tables/"):
		nav = "pipeline"
	case r.URL.Path == "/quality":
		nav = "quality"
	case r.URL.Path == "/runs":
		nav = "runs"
	}
	p := page{Title: title, Nav: nav, Lake: d.o.Store.URL(), Now: d.o.Now().UTC(), Content: data}
	var buf bytes.Buffer
	if err := d.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		d.o.Log.Error("dashboard: render", "page", name, "err", err)
		http.Error(w, "render "+name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	writeBody(w, r, status, buf.Bytes())
}

type errorData struct {
	Title   string
	Message string
	Links   []string // tables to offer (a 404 on a table)
}

func (e errorData) title() string { return e.Title }

func (d *Dashboard) errorPage(w http.ResponseWriter, r *http.Request, status int, title, msg string, links []string) {
	d.render(w, r, status, "error.html", errorData{Title: title, Message: msg, Links: links})
}

// groupDigits writes 1234567 as 1,234,567.
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// ago renders how long before now t was: "12 s ago", "3 min ago".
func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%d s ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d d ago", int(d.Hours()/24))
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

func formatDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "-"
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return d.Round(time.Second).String()
}

// cellText renders one sample value.
func cellText(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case time.Time:
		if v.Hour() == 0 && v.Minute() == 0 && v.Second() == 0 && v.Nanosecond() == 0 {
			return v.UTC().Format("2006-01-02 15:04:05")
		}
		if v.Nanosecond() != 0 {
			return v.UTC().Format("2006-01-02 15:04:05.000000")
		}
		return v.UTC().Format("2006-01-02 15:04:05")
	case float64:
		return formatFloat(v)
	case float32:
		return formatFloat(float64(v))
	case []byte:
		return fmt.Sprintf("%x", v)
	case string:
		if len(v) > 300 {
			return v[:300] + "…"
		}
		return v
	}
	return fmt.Sprint(v)
}

func formatFloat(f float64) string {
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		return strconv.FormatFloat(f, 'g', -1, 64)
	case f != 0 && (math.Abs(f) >= 1e12 || math.Abs(f) < 1e-4):
		return strconv.FormatFloat(f, 'g', 6, 64)
	}
	s := strconv.FormatFloat(f, 'f', 4, 64)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}
