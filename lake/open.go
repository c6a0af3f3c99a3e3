package lake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/medallion-dev/medallion/internal/redact"
)

// Open returns the Store for a lake URL:
//
//   - file:///abs/path, file://./rel/path, file://rel/path or a bare path
//     ("./lake", "/srv/lake"): a local directory (see NewLocal), created if
//     missing;
//   - s3://bucket or s3://bucket/prefix: an S3 or MinIO bucket (see NewS3).
//     Bucket and prefix come from the URL and override s3.Bucket and
//     s3.Prefix; endpoint, credentials, region and TLS come from s3. Open sets
//     s3.CreateBucket, so the bucket is created if it does not exist yet.
//
// Any other scheme is refused with an error naming the URL, its password
// (if it has user info) masked.
func Open(ctx context.Context, rawURL string, s3 S3Options) (Store, error) {
	st, err := open(ctx, rawURL, s3, true)
	return st, redact.Error(err, s3.SecretKey)
}

// OpenExisting is Open without creating anything: a local directory must
// exist already and an S3 bucket is never created. A missing directory or
// bucket is reported as ErrNoLake. It does not check that the lake was
// initialised (that is the command line's concern).
func OpenExisting(ctx context.Context, rawURL string, s3 S3Options) (Store, error) {
	st, err := open(ctx, rawURL, s3, false)
	return st, redact.Error(err, s3.SecretKey)
}

// ErrNoLake means OpenExisting found no directory or bucket at the URL.
var ErrNoLake = errors.New("no lake")

// schemeLike matches a bare path that starts like a URL scheme ("s3:",
// "s3:/bucket", "file:lake"): almost always a URL missing its "//", which
// would otherwise become a local directory named "s3:".
var schemeLike = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]+:`)

// CheckURL refuses a lake URL that Open would misread: empty, a scheme
// without "//", or a scheme other than file and s3.
func CheckURL(rawURL string) error {
	if strings.TrimSpace(rawURL) == "" {
		return errors.New("empty lake URL (want file://DIR, a directory path or s3://bucket/prefix)")
	}
	scheme, _, hasScheme := strings.Cut(rawURL, "://")
	if !hasScheme {
		if m := schemeLike.FindString(rawURL); m != "" {
			return fmt.Errorf("malformed lake URL %q: %q is not followed by \"//\" (want file://DIR, a directory path or s3://bucket/prefix; write ./%s for a directory of that name)", redact.String(rawURL), m, rawURL)
		}
		return nil
	}
	switch strings.ToLower(scheme) {
	case "file", "s3":
		return nil
	}
	return fmt.Errorf("unsupported scheme %q in lake URL %q (want file://DIR, a directory path or s3://bucket/prefix)", scheme, redact.String(rawURL))
}

func open(ctx context.Context, rawURL string, s3 S3Options, create bool) (Store, error) {
	if err := CheckURL(rawURL); err != nil {
		return nil, fmt.Errorf("open lake: %w", err)
	}
	scheme, rest, hasScheme := strings.Cut(rawURL, "://")
	if !hasScheme {
		return openLocal(rawURL, create)
	}
	switch strings.ToLower(scheme) {
	case "file":
		dir, err := fileURLPath(rawURL, rest)
		if err != nil {
			return nil, err
		}
		return openLocal(dir, create)
	case "s3":
		u, err := url.Parse(rawURL)
		if err != nil {
			return nil, fmt.Errorf("open lake %q: %w", rawURL, err)
		}
		if u.Host == "" {
			return nil, fmt.Errorf("open lake %q: no bucket (want s3://bucket or s3://bucket/prefix)", rawURL)
		}
		if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("open lake %q: s3 URLs take no user, query or fragment (set the endpoint and credentials in the s3 options)", rawURL)
		}
		s3.Bucket = u.Host
		s3.Prefix = strings.Trim(u.Path, "/")
		s3.CreateBucket = create
		st, err := NewS3(ctx, s3)
		var nb *noBucketError
		if !create && errors.As(err, &nb) {
			return nil, fmt.Errorf("%w: %w", ErrNoLake, err)
		}
		return st, err
	default:
		return nil, fmt.Errorf("open lake %q: unsupported scheme %q (want file://DIR, a directory path or s3://bucket/prefix)", rawURL, scheme)
	}
}

// openLocal opens a local lake directory, creating it only if create is set.
func openLocal(dir string, create bool) (Store, error) {
	if !create && dir != "" {
		fi, err := os.Stat(dir)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: directory %s does not exist", ErrNoLake, dir)
		}
		if err != nil {
			return nil, fmt.Errorf("open local lake %s: %w", dir, err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("open local lake %s: not a directory", dir)
		}
	}
	return NewLocal(dir)
}

// fileURLPath turns the part of a file URL after "file://" into a directory.
// "file:///abs" is absolute; "file://./rel" and "file://rel" are relative to
// the working directory; "file://localhost/abs" is accepted too.
func fileURLPath(rawURL, rest string) (string, error) {
	if strings.ContainsAny(rest, "?#") {
		return "", fmt.Errorf("open lake %q: file URLs take no query or fragment", rawURL)
	}
	if after, ok := strings.CutPrefix(rest, "localhost/"); ok {
		rest = "/" + after
	}
	if rest == "" {
		return "", fmt.Errorf("open lake %q: no directory (want file:///abs/dir or file://./rel/dir)", rawURL)
	}
	p, err := url.PathUnescape(rest)
	if err != nil {
		return "", fmt.Errorf("open lake %q: %w", rawURL, err)
	}
	return filepath.FromSlash(p), nil
}

// Error is the detailed error every Store in this package returns: what was
// being done (Op: "get", "put", "list", ...), where (Store URL and Key) and
// why (Err). Err is ErrNotExist or ErrExists when the failure is one of those
// conditions, so errors.Is works through it.
type Error struct {
	Op    string // the Store method, lower case: get, get-range, put, put-if-absent, stat, list, delete
	Store string // the store's URL
	Key   string // the key (or list prefix) involved; may be empty
	Err   error  // the cause
}

// Error renders "op store/key: cause", naming the object a user has to look at.
func (e *Error) Error() string {
	loc := e.Store
	if e.Key != "" {
		loc = strings.TrimSuffix(loc, "/") + "/" + e.Key
	}
	return fmt.Sprintf("%s %s: %v", e.Op, loc, e.Err)
}

// Unwrap returns the cause, so errors.Is(err, ErrNotExist) works.
func (e *Error) Unwrap() error { return e.Err }

// ValidateKey reports whether key is a valid object key: non-empty,
// '/'-separated, with no leading or trailing '/', no empty, "." or ".."
// segment, no backslash and no NUL byte. Every Store method refuses an
// invalid key with an error wrapping the reason.
func ValidateKey(key string) error {
	if key == "" {
		return errors.New("invalid key: empty")
	}
	if strings.HasPrefix(key, "/") {
		return fmt.Errorf("invalid key %q: starts with '/' (keys are relative to the lake root)", key)
	}
	if strings.ContainsAny(key, "\\\x00") {
		return fmt.Errorf("invalid key %q: contains a backslash or NUL byte", key)
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "":
			return fmt.Errorf("invalid key %q: empty path segment (a trailing or doubled '/')", key)
		case ".", "..":
			return fmt.Errorf("invalid key %q: %q segment is not allowed", key, seg)
		}
	}
	return nil
}

// validatePrefix checks a List prefix: the complete segments (before the
// last '/') follow the key rules; the last, partial segment may be anything
// but must not contain a backslash or NUL.
func validatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if strings.HasPrefix(prefix, "/") {
		return fmt.Errorf("invalid prefix %q: starts with '/' (keys are relative to the lake root)", prefix)
	}
	if strings.ContainsAny(prefix, "\\\x00") {
		return fmt.Errorf("invalid prefix %q: contains a backslash or NUL byte", prefix)
	}
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		if err := ValidateKey(prefix[:i]); err != nil {
			return fmt.Errorf("invalid prefix %q: %w", prefix, err)
		}
	}
	return nil
}

// ctxReader makes a copy loop notice cancellation between reads.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
