package lake

import "strings"

// Endpoint is the host[:port] the store's client talks to.
func (s *S3) Endpoint() string { return s.client.EndpointURL().Host }

// AtBucketRoot is a store on the same bucket and connection whose keys are
// the bucket's own keys (no prefix): raw reads a file referenced in place,
// which lies beside the lake rather than under its prefix, through it.
func (s *S3) AtBucketRoot() *S3 {
	c := *s
	c.root, c.url = "", "s3://"+s.bucket
	return &c
}

// BucketKey is the key, in the bucket, of the store's key: prefix + key.
func (s *S3) BucketKey(key string) string { return s.name(key) }

// SplitS3URL splits s3://bucket/key into bucket and key.
func SplitS3URL(u string) (bucket, key string, ok bool) {
	rest, ok := strings.CutPrefix(u, "s3://")
	if !ok {
		return "", "", false
	}
	bucket, key, _ = strings.Cut(rest, "/")
	return bucket, key, bucket != "" && key != ""
}
