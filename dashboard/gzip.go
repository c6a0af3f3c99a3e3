package dashboard

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strings"
)

// gzipMin is the smallest body worth compressing.
const gzipMin = 1024

// writeBody writes a buffered body, gzipped when the client accepts it
// and it is big enough: a page's SVG chart and a series answer are mostly
// repetitive numbers and shrink several times.
func writeBody(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	w.Header().Add("Vary", "Accept-Encoding")
	if len(body) >= gzipMin && acceptsGzip(r) {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		_, _ = zw.Write(body)
		if zw.Close() == nil {
			w.Header().Set("Content-Encoding", "gzip")
			body = buf.Bytes()
		}
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}
