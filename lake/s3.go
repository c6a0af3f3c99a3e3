package lake

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// maxPutIfAbsentBuffer bounds how much PutIfAbsent reads into memory when the
// size is unknown: it sends one single-part conditional PUT, and the objects
// it is meant for (Delta log entries, leases) are small.
const maxPutIfAbsentBuffer = 64 << 20

// S3Options says how to reach a bucket on S3 or an S3-compatible server
// such as MinIO. Secrets should come from the environment, not from files.
type S3Options struct {
	// Endpoint is host[:port] ("127.0.0.1:9000", "s3.eu-west-1.amazonaws.com").
	// An "http://" or "https://" prefix is accepted and decides Secure.
	Endpoint  string
	AccessKey string // empty with SecretKey: anonymous requests
	SecretKey string
	Region    string // optional; "" lets the client discover it
	Secure    bool   // use HTTPS
	Bucket    string // required
	// Prefix is the lake's root inside the bucket ("" or "team/lake"); keys
	// are stored as Prefix + "/" + key. Leading and trailing '/' are ignored.
	Prefix string
	// CreateBucket creates the bucket if it does not exist. Without it NewS3
	// refuses a missing bucket. Open sets it.
	CreateBucket bool
	// MaxRetries bounds the attempts of one request (0: minio-go's default,
	// 10), and the replies in a row cut mid-body without delivering a byte
	// before a read gives up (see s3resume.go). Fault tests set it low so
	// that a failure outlasts the retries.
	MaxRetries int
}

// Validate refuses options NewS3 cannot work with, naming the field.
func (o S3Options) Validate() error {
	endpoint, _ := o.endpoint()
	switch {
	case endpoint == "":
		return errors.New("s3 options: endpoint is empty (want host:port, e.g. 127.0.0.1:9000)")
	case strings.Contains(endpoint, "@"):
		return errors.New("s3 options: endpoint must be host[:port], without a user or password (set the access and secret keys)")
	case strings.ContainsAny(endpoint, "/?#"):
		return fmt.Errorf("s3 options: endpoint %q must be host[:port] without a path", o.Endpoint)
	case o.Bucket == "":
		return errors.New("s3 options: bucket is empty")
	case (o.AccessKey == "") != (o.SecretKey == ""):
		return errors.New("s3 options: set both access key and secret key, or neither")
	}
	return nil
}

// endpoint strips an http:// or https:// scheme and reports whether TLS is on.
func (o S3Options) endpoint() (host string, secure bool) {
	if h, ok := strings.CutPrefix(o.Endpoint, "https://"); ok {
		return strings.TrimSuffix(h, "/"), true
	}
	if h, ok := strings.CutPrefix(o.Endpoint, "http://"); ok {
		return strings.TrimSuffix(h, "/"), false
	}
	return o.Endpoint, o.Secure
}

// S3 is a Store on an S3 or MinIO bucket, under an optional key prefix. A PUT
// is atomic on S3, so readers never see a partial object; PutIfAbsent sends
// If-None-Match: * and is atomic against writers on any machine.
type S3 struct {
	client *minio.Client
	core   minio.Core
	bucket string
	root   string // "" or "prefix/"
	// attempts bounds the replies in a row a read may see cut without a
	// byte delivered (S3Options.MaxRetries).
	attempts int
	url      string // s3://bucket[/prefix]
}

var _ Store = (*S3)(nil)

// NewS3 connects to the bucket in opts and checks that it exists (creating it
// if opts.CreateBucket is set). Errors name the endpoint and bucket.
func NewS3(ctx context.Context, opts S3Options) (*S3, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	endpoint, secure := opts.endpoint()
	prefix := strings.Trim(opts.Prefix, "/")
	u := "s3://" + opts.Bucket
	if prefix != "" {
		if err := ValidateKey(prefix); err != nil {
			return nil, fmt.Errorf("s3 options: prefix: %w", err)
		}
		u += "/" + prefix
	}
	client, err := minio.New(endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(opts.AccessKey, opts.SecretKey, ""),
		Secure:     secure,
		Region:     opts.Region,
		MaxRetries: opts.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("connect to s3 endpoint %s: %w", endpoint, err)
	}
	s := &S3{client: client, core: minio.Core{Client: client}, bucket: opts.Bucket, url: u, attempts: minio.MaxRetry}
	if opts.MaxRetries > 0 {
		s.attempts = opts.MaxRetries
	}
	if prefix != "" {
		s.root = prefix + "/"
	}
	if err := s.ensureBucket(ctx, opts.Region, opts.CreateBucket, endpoint); err != nil {
		return nil, err
	}
	return s, nil
}

// noBucketError is ensureBucket's error for a missing bucket.
type noBucketError struct{ msg string }

func (e *noBucketError) Error() string { return e.msg }

// ensureBucket checks the bucket exists and, if create is set, creates it.
func (s *S3) ensureBucket(ctx context.Context, region string, create bool, endpoint string) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("check bucket %q at %s: %w", s.bucket, endpoint, err)
	}
	if ok {
		return nil
	}
	if !create {
		return &noBucketError{fmt.Sprintf("bucket %q does not exist at %s: create it first", s.bucket, endpoint)}
	}
	err = s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: region})
	if err != nil {
		if code := s3Code(err); code != minio.BucketAlreadyOwnedByYou && code != minio.BucketAlreadyExists {
			return fmt.Errorf("create bucket %q at %s: %w", s.bucket, endpoint, err)
		}
		// Someone else created it first; check it is usable by us.
		if ok, err = s.client.BucketExists(ctx, s.bucket); err != nil || !ok {
			return fmt.Errorf("create bucket %q at %s: it exists but is not accessible: %v", s.bucket, endpoint, err)
		}
	}
	return nil
}

// URL returns s3://bucket or s3://bucket/prefix.
func (s *S3) URL() string { return s.url }

// Bucket returns the bucket name.
func (s *S3) Bucket() string { return s.bucket }

// Get opens the whole object with one GET; the body streams under ctx, so
// keep ctx alive while reading. A body cut mid-way is resumed with a ranged
// GET pinned to the first reply's ETag (s3resume.go); if the object was
// replaced meanwhile the read fails with ErrChanged. Returns ErrNotExist if
// it is missing.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error) {
	if err := ValidateKey(key); err != nil {
		return nil, ObjectInfo{}, s.fail("get", key, err)
	}
	body, oi, _, err := s.core.GetObject(ctx, s.bucket, s.name(key), minio.GetObjectOptions{})
	if err != nil {
		return nil, ObjectInfo{}, s.fail("get", key, s3Cause(err))
	}
	return s.resumable(ctx, "get", key, body, oi, 0), s.info(key, oi), nil
}

// GetRange opens length bytes from offset (length < 0: to the end) with one
// ranged GET, resumed like Get's after a cut. A range reaching past the end
// is cut at the end; an offset past the end is an error. Returns ErrNotExist
// if the object is missing.
func (s *S3) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := ValidateKey(key); err != nil {
		return nil, s.fail("get-range", key, err)
	}
	if offset < 0 {
		return nil, s.fail("get-range", key, fmt.Errorf("negative offset %d", offset))
	}
	if length == 0 {
		return s.emptyRange(ctx, key, offset)
	}
	var opts minio.GetObjectOptions
	var err error
	switch {
	case length > 0:
		err = opts.SetRange(offset, offset+length-1)
	case offset > 0:
		err = opts.SetRange(offset, 0)
	}
	if err != nil {
		return nil, s.fail("get-range", key, err)
	}
	body, oi, _, err := s.core.GetObject(ctx, s.bucket, s.name(key), opts)
	if err != nil {
		if s3Code(err) == minio.InvalidRange {
			// An offset at the very end (or any range of an empty object).
			return s.emptyRange(ctx, key, offset)
		}
		return nil, s.fail("get-range", key, s3Cause(err))
	}
	return s.resumable(ctx, "get-range", key, body, oi, offset), nil
}

// emptyRange answers a range that holds no bytes: empty if offset is at most
// the size, an error if it is past the end or the object is missing.
func (s *S3) emptyRange(ctx context.Context, key string, offset int64) (io.ReadCloser, error) {
	oi, err := s.client.StatObject(ctx, s.bucket, s.name(key), minio.StatObjectOptions{})
	if err != nil {
		return nil, s.fail("get-range", key, s3Cause(err))
	}
	if offset > oi.Size {
		return nil, s.fail("get-range", key, fmt.Errorf("offset %d is past the end of the %d-byte object", offset, oi.Size))
	}
	return io.NopCloser(bytes.NewReader(nil)), nil
}

// streamPartSize is the multipart part size of uploads of unknown length.
const streamPartSize = 16 << 20

// Put writes the object, replacing any previous one. With size -1 it streams
// r in multipart chunks (streamPartSize) without knowing the length; the
// object appears only when the upload completes.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64) (ObjectInfo, error) {
	if err := ValidateKey(key); err != nil {
		return ObjectInfo{}, s.fail("put", key, err)
	}
	// With an unknown size minio-go would otherwise pick parts of about
	// 512 MiB and buffer each one in memory; 16 MiB parts keep a streamed
	// upload's memory small (up to 10,000 parts: 160 GB per object).
	var opts minio.PutObjectOptions
	if size < 0 {
		opts.PartSize = streamPartSize
	}
	ui, err := s.client.PutObject(ctx, s.bucket, s.name(key), r, size, opts)
	if err != nil {
		return ObjectInfo{}, s.fail("put", key, s3Cause(err))
	}
	return s.uploaded(key, ui), nil
}

// PutIfAbsent writes the object only if no object has that key, with one
// single-part PUT carrying If-None-Match: *, so the server decides the race.
// With size -1 the body is read into memory first (at most 64 MiB). Returns
// ErrExists if it lost (HTTP 412, or 409 ConditionalRequestConflict when a
// concurrent conditional write was in flight).
func (s *S3) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) (ObjectInfo, error) {
	if err := ValidateKey(key); err != nil {
		return ObjectInfo{}, s.fail("put-if-absent", key, err)
	}
	// The body is kept in memory (these objects are logs, manifests and
	// leases) so that a 412 can be checked against what is stored: minio-go
	// retries a PUT whose reply was lost, and the retry then finds our own
	// first write. Identical bytes mean this call's write is the one stored.
	var body []byte
	if size < 0 || size <= maxPutIfAbsentBuffer {
		buf, err := io.ReadAll(io.LimitReader(ctxReader{ctx: ctx, r: r}, maxPutIfAbsentBuffer+1))
		if err != nil {
			return ObjectInfo{}, s.fail("put-if-absent", key, fmt.Errorf("read body: %w", err))
		}
		if len(buf) > maxPutIfAbsentBuffer {
			return ObjectInfo{}, s.fail("put-if-absent", key, fmt.Errorf("body of unknown size is over %d MiB: pass its size", maxPutIfAbsentBuffer>>20))
		}
		if size >= 0 && int64(len(buf)) != size {
			return ObjectInfo{}, s.fail("put-if-absent", key, fmt.Errorf("body has %d bytes, want %d", len(buf), size))
		}
		body = buf
		r, size = bytes.NewReader(buf), int64(len(buf))
	}
	opts := minio.PutObjectOptions{DisableMultipart: true}
	opts.SetMatchETagExcept("*")
	ui, err := s.client.PutObject(ctx, s.bucket, s.name(key), r, size, opts)
	if err != nil {
		cause := s3Cause(err)
		if errors.Is(cause, ErrExists) && body != nil && s.holds(ctx, key, body) {
			return s.Stat(ctx, key)
		}
		return ObjectInfo{}, s.fail("put-if-absent", key, cause)
	}
	return s.uploaded(key, ui), nil
}

// holds reports whether the object at key has exactly the given bytes.
func (s *S3) holds(ctx context.Context, key string, want []byte) bool {
	rc, _, err := s.Get(ctx, key)
	if err != nil {
		return false
	}
	defer rc.Close()
	got, err := io.ReadAll(io.LimitReader(rc, int64(len(want))+1))
	return err == nil && bytes.Equal(got, want)
}

// Stat describes the object with a HEAD request. Returns ErrNotExist if it
// is missing.
func (s *S3) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := ValidateKey(key); err != nil {
		return ObjectInfo{}, s.fail("stat", key, err)
	}
	oi, err := s.client.StatObject(ctx, s.bucket, s.name(key), minio.StatObjectOptions{})
	if err != nil {
		return ObjectInfo{}, s.fail("stat", key, s3Cause(err))
	}
	return s.info(key, oi), nil
}

// List returns every object whose key starts with prefix and sorts after
// startAfter, in ascending key order (the listing is recursive; "directory"
// marker objects ending in '/' are skipped). Listing a prefix with no objects
// returns an empty slice and no error.
func (s *S3) List(ctx context.Context, prefix, startAfter string) ([]ObjectInfo, error) {
	if err := validatePrefix(prefix); err != nil {
		return nil, s.fail("list", prefix, err)
	}
	ctx, cancel := context.WithCancel(ctx) // stops the lister on an early return
	defer cancel()
	opts := minio.ListObjectsOptions{Prefix: s.root + prefix, Recursive: true}
	if startAfter != "" {
		opts.StartAfter = s.root + startAfter
	}
	out := []ObjectInfo{}
	for oi := range s.client.ListObjects(ctx, s.bucket, opts) {
		if oi.Err != nil {
			return nil, s.fail("list", prefix, s3Cause(oi.Err))
		}
		key, ok := strings.CutPrefix(oi.Key, s.root)
		if !ok || key == "" || strings.HasSuffix(key, "/") || !strings.HasPrefix(key, prefix) || key <= startAfter {
			continue
		}
		out = append(out, s.info(key, oi))
	}
	if err := ctx.Err(); err != nil {
		return nil, s.fail("list", prefix, err)
	}
	slices.SortFunc(out, func(a, b ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Delete removes the object. Deleting a missing object is not an error.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return s.fail("delete", key, err)
	}
	err := s.client.RemoveObject(ctx, s.bucket, s.name(key), minio.RemoveObjectOptions{})
	if err != nil && !errors.Is(s3Cause(err), ErrNotExist) {
		return s.fail("delete", key, s3Cause(err))
	}
	return nil
}

func (s *S3) name(key string) string { return s.root + key }

func (s *S3) info(key string, oi minio.ObjectInfo) ObjectInfo {
	return ObjectInfo{Key: key, Size: oi.Size, ETag: oi.ETag, ModTime: oi.LastModified}
}

// uploaded describes a finished upload. The server does not always report
// the modification time of a PUT; then the client's clock stands in.
func (s *S3) uploaded(key string, ui minio.UploadInfo) ObjectInfo {
	mod := ui.LastModified
	if mod.IsZero() {
		mod = time.Now().UTC()
	}
	return ObjectInfo{Key: key, Size: ui.Size, ETag: ui.ETag, ModTime: mod}
}

func (s *S3) fail(op, key string, err error) error {
	return &Error{Op: op, Store: s.url, Key: key, Err: err}
}

// s3Code returns the S3 error code of err ("" if it is not an S3 error
// response), looking through wrapping.
func s3Code(err error) string {
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		return resp.Code
	}
	return minio.ToErrorResponse(err).Code
}

// s3Cause translates the S3 error codes callers branch on into this
// package's sentinels, by code and HTTP status, never by message. Other
// errors come back unchanged.
func s3Cause(err error) error {
	var resp minio.ErrorResponse
	if !errors.As(err, &resp) {
		return err
	}
	switch {
	case resp.Code == minio.NoSuchKey,
		resp.StatusCode == http.StatusNotFound && resp.Code != minio.NoSuchBucket:
		return ErrNotExist
	case resp.Code == minio.PreconditionFailed,
		resp.StatusCode == http.StatusPreconditionFailed,
		resp.Code == "ConditionalRequestConflict":
		return ErrExists
	case resp.Code == minio.NoSuchBucket:
		return fmt.Errorf("bucket %q does not exist: %w", resp.BucketName, err)
	}
	return err
}
