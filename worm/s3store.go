package worm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// ErrUnavailable marks an S3 failure that may pass if retried: the server
// could not be reached or timed out, or answered that it is busy or broken
// (a 5xx status, throttling). Conflicts, missing objects, refused
// credentials and bad requests never match it.
var ErrUnavailable = errors.New("object store unavailable")

// Object Lock modes, as S3 spells them.
const (
	S3ModeCompliance = "COMPLIANCE"
	S3ModeGovernance = "GOVERNANCE"
)

// S3 timeouts and retries. A call is bounded by its context; these make an
// unreachable endpoint fail in seconds rather than the minutes an operating
// system's connect timeout allows, and leave retrying for longer to the
// caller (the sealer retries with back-off while segments wait in the spool).
const (
	s3DialTimeout     = 3 * time.Second
	s3TLSTimeout      = 5 * time.Second
	s3ResponseTimeout = 30 * time.Second // from the request's last byte to the answer's headers
	s3MaxAttempts     = 3                // minio-go's own retries, with at most 1.4 s of back-off

	s3MaxPrealloc = 64 << 20 // largest buffer Get sizes from an object's stated length
)

// S3Options say where an S3Store keeps the trail and how it locks objects.
// The zero value of each field but Bucket is valid.
type S3Options struct {
	// Bucket holds the trail; it must have versioning and Object Lock
	// enabled (InitBucket creates or checks it).
	Bucket string
	// Prefix is the root under which store keys live: key k is the object
	// Prefix/k. If empty, keys are object names.
	Prefix string
	// Endpoint is the server's host or host:port; if empty,
	// s3.amazonaws.com.
	Endpoint string
	// Insecure makes the store speak plain HTTP; if false, HTTPS.
	Insecure bool
	// Region is the bucket's region; if empty, the server is asked once.
	Region string
	// AccessKey, SecretKey and SessionToken are the credentials. If
	// AccessKey is empty they are read from AWS_ACCESS_KEY_ID,
	// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN when first needed.
	AccessKey, SecretKey, SessionToken string
	// Mode is the Object Lock mode set on every object, S3ModeCompliance or
	// S3ModeGovernance; if empty, S3ModeCompliance.
	Mode string
	// Retention is how long each object is locked after it is written, at
	// least a day; if zero, six calendar months and a day.
	Retention time.Duration
	// LegalHold also puts a legal hold on every object, which keeps it
	// until the hold is lifted whatever its retention.
	LegalHold bool
}

// Validate reports every problem with o, each naming its field as the
// store URL's parameter is named.
func (o S3Options) Validate() error {
	var errs []error
	if err := s3utils.CheckValidBucketNameStrict(o.Bucket); err != nil {
		errs = append(errs, fmt.Errorf("bucket %q: %v", o.Bucket, err))
	}
	if err := ValidatePrefix(o.Prefix); err != nil {
		errs = append(errs, fmt.Errorf("prefix: %w", err))
	}
	if o.Endpoint != "" {
		if err := s3CheckEndpoint(o.Endpoint); err != nil {
			errs = append(errs, fmt.Errorf("endpoint %q: %w", o.Endpoint, err))
		}
	}
	if strings.Trim(o.Region, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		errs = append(errs, fmt.Errorf("region %q: only a-z, 0-9 and '-' are allowed", o.Region))
	}
	if (o.AccessKey == "") != (o.SecretKey == "") || o.AccessKey == "" && o.SessionToken != "" {
		errs = append(errs, errors.New("credentials: give both an access key and a secret key, or neither to use the AWS environment variables"))
	}
	switch o.Mode {
	case "", S3ModeCompliance, S3ModeGovernance:
	default:
		errs = append(errs, fmt.Errorf("mode %q: want %s or %s", o.Mode, S3ModeCompliance, S3ModeGovernance))
	}
	if o.Retention != 0 && o.Retention < 24*time.Hour {
		errs = append(errs, fmt.Errorf("retention %v: less than a day (give days, as in 190d)", o.Retention))
	}
	return errors.Join(errs...)
}

func s3CheckEndpoint(ep string) error {
	if strings.Contains(ep, "://") || strings.ContainsAny(ep, "/?#@ ") {
		return errors.New("want host or host:port, without scheme or path (secure=false selects http)")
	}
	host := ep
	if h, port, err := net.SplitHostPort(ep); err == nil {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not a number from 1 to 65535", port)
		}
		host = h
	}
	if !s3utils.IsValidDomain(host) && !s3utils.IsValidIP(host) {
		return fmt.Errorf("%q is neither a host name nor an IP address", host)
	}
	return nil
}

// s3URLParams are the query parameters ParseS3URL knows.
var s3URLParams = []string{"endpoint", "region", "secure", "retention", "mode", "legal_hold"}

// ParseS3URL reads a store URL:
//
//	s3://bucket/prefix?endpoint=host:port&region=r&secure=false&retention=190d&mode=governance&legal_hold=true
//
// Every parameter is optional: endpoint defaults to s3.amazonaws.com,
// secure to true, mode to compliance, retention to six months and a day
// (give days as "190d" or a Go duration as "4560h"), legal_hold to false.
// Unknown or repeated parameters are refused, and so are credentials in the
// URL: they come from the AWS environment variables. Every problem is
// reported, each naming its parameter.
func ParseS3URL(rawURL string) (S3Options, error) {
	var o S3Options
	u, err := url.Parse(rawURL)
	if err != nil {
		return o, fmt.Errorf("parse store URL: %w", err)
	}
	if u.Scheme != "s3" || u.Opaque != "" {
		return o, fmt.Errorf("store URL %q: want s3://bucket/prefix?…", rawURL)
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if u.User != nil {
		bad("credentials do not belong in the URL: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	if u.Fragment != "" {
		bad("a fragment (#%s) means nothing here", u.Fragment)
	}
	o.Bucket = u.Host
	o.Prefix = strings.Trim(u.Path, "/")
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		bad("query: %v", err)
	}
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		vals := q[name]
		if len(vals) > 1 {
			bad("%s is given %d times", name, len(vals))
			continue
		}
		v := vals[0]
		switch name {
		case "endpoint":
			o.Endpoint = v
			if v == "" {
				bad("endpoint is empty")
			}
		case "region":
			o.Region = v
			if v == "" {
				bad("region is empty")
			}
		case "secure":
			secure, err := strconv.ParseBool(v)
			if err != nil {
				bad("secure=%q: want true or false", v)
			}
			o.Insecure = !secure
		case "legal_hold":
			hold, err := strconv.ParseBool(v)
			if err != nil {
				bad("legal_hold=%q: want true or false", v)
			}
			o.LegalHold = hold
		case "mode":
			switch strings.ToUpper(v) {
			case S3ModeCompliance, S3ModeGovernance:
				o.Mode = strings.ToUpper(v)
			default:
				bad("mode=%q: want compliance or governance", v)
			}
		case "retention":
			d, err := parseRetention(v)
			if err != nil {
				bad("retention=%q: %v", v, err)
			}
			o.Retention = d
		default:
			bad("unknown parameter %q (known: %s)", name, strings.Join(s3URLParams, ", "))
		}
	}
	if err := o.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return S3Options{}, fmt.Errorf("store URL %s: %w", u.Redacted(), err)
	}
	return o, nil
}

// parseRetention reads "190d" or a Go duration of at least a day, which
// keeps "6m" (six minutes, not months) from locking objects for minutes.
// ParseRetention parses a retention as the store URL's retention=
// parameter takes it: D days (190d) or a Go duration, at least a day.
func ParseRetention(v string) (time.Duration, error) { return parseRetention(v) }

func parseRetention(v string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 1 || n > 100*366 {
			return 0, errors.New("want a whole number of days from 1, as in 190d")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, errors.New("want days, as in 190d, or a Go duration, as in 4560h")
	}
	if d < 24*time.Hour {
		return 0, fmt.Errorf("%v is less than a day (give days, as in 190d)", d)
	}
	return d, nil
}

// S3Store is a Store in an S3 bucket with Object Lock. Every object is
// written once, in one PUT with If-None-Match: * and Content-MD5, locked
// by its own mode and retain-until date (never by the bucket's default),
// and read back by version id before Put reports success. It is safe for
// concurrent use.
type S3Store struct {
	client    *minio.Client
	bucket    string
	root      string // Prefix with a trailing slash, or ""
	endpoint  string
	mode      minio.RetentionMode
	retention time.Duration // zero: AddDate(0, 6, 1)
	legalHold bool
}

var _ Store = (*S3Store)(nil)

// NewS3Store returns the store o describes. It does not contact the
// server.
func NewS3Store(o S3Options) (*S3Store, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("open S3 store: %w", err)
	}
	client, err := newS3Client(o)
	if err != nil {
		return nil, fmt.Errorf("open S3 store: %w", err)
	}
	s := &S3Store{
		client:    client,
		bucket:    o.Bucket,
		endpoint:  client.EndpointURL().Host,
		mode:      minio.Compliance,
		retention: o.Retention,
		legalHold: o.LegalHold,
	}
	if p := strings.Trim(o.Prefix, "/"); p != "" {
		s.root = p + "/"
	}
	if o.Mode == S3ModeGovernance {
		s.mode = minio.Governance
	}
	return s, nil
}

func newS3Client(o S3Options) (*minio.Client, error) {
	endpoint := o.Endpoint
	if endpoint == "" {
		endpoint = "s3.amazonaws.com"
	}
	creds := credentials.NewEnvAWS()
	if o.AccessKey != "" {
		creds = credentials.NewStaticV4(o.AccessKey, o.SecretKey, o.SessionToken)
	}
	tr, err := minio.DefaultTransport(!o.Insecure)
	if err != nil {
		return nil, err
	}
	tr.DialContext = (&net.Dialer{Timeout: s3DialTimeout, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = s3TLSTimeout
	tr.ResponseHeaderTimeout = s3ResponseTimeout
	return minio.New(endpoint, &minio.Options{
		Creds:      creds,
		Secure:     !o.Insecure,
		Region:     o.Region,
		Transport:  retentionRootFix{tr},
		MaxRetries: s3MaxAttempts,
	})
}

// Describe names the store for messages.
func (s *S3Store) Describe() string {
	if s.root == "" {
		return fmt.Sprintf("S3 bucket %s at %s", s.bucket, s.endpoint)
	}
	return fmt.Sprintf("S3 bucket %s prefix %s at %s", s.bucket, strings.TrimSuffix(s.root, "/"), s.endpoint)
}

// RetentionPolicy returns the Object Lock mode Put sets and the
// retain-until date it gives an object written at from. An object's date
// comes from the writer's clock just before the upload and is stored to
// the second, so a checker should allow a little slack against the
// object's LastModified.
func (s *S3Store) RetentionPolicy() (mode string, retainUntil func(from time.Time) time.Time) {
	return string(s.mode), s.retainUntil
}

func (s *S3Store) retainUntil(from time.Time) time.Time {
	if s.retention == 0 {
		return from.AddDate(0, 6, 1)
	}
	return from.Add(s.retention)
}

func (s *S3Store) object(key string) string { return s.root + key }

// Put implements Store. It returns nil only once the object's version has
// been read back and its SHA-256 matches data, so the caller may then
// delete its own copy. Failures worth retrying match ErrUnavailable.
func (s *S3Store) Put(ctx context.Context, key string, data []byte) error {
	if err := ValidateObjectKey(key); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	opts := minio.PutObjectOptions{
		DisableMultipart: true,
		SendContentMd5:   true,
		Mode:             s.mode,
		RetainUntilDate:  s.retainUntil(time.Now()).UTC(),
	}
	if s.legalHold {
		opts.LegalHold = minio.LegalHoldEnabled
	}
	opts.SetMatchETagExcept("*")
	info, err := s.client.PutObject(ctx, s.bucket, s.object(key), bytes.NewReader(data), int64(len(data)), opts)
	switch {
	case s3Code(err) == minio.PreconditionFailed:
		// The key exists: a retried upload whose first answer was lost,
		// or another writer's object.
		if err := s.sameObject(ctx, key, "", data); err != nil {
			return fmt.Errorf("put %s in %s: %w", key, s.Describe(), err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("put %s in %s: %w", key, s.Describe(), s3Classify(ctx, err))
	case info.VersionID == "":
		return fmt.Errorf("put %s in %s: the server returned no version id, so the object cannot be read back by version: enable versioning and Object Lock on the bucket", key, s.Describe())
	}
	if err := s.sameObject(ctx, key, info.VersionID, data); err != nil {
		return fmt.Errorf("put %s in %s: read back version %s: %w", key, s.Describe(), info.VersionID, err)
	}
	return nil
}

// sameObject reads the object's version (the latest if versionID is
// empty) and compares its SHA-256 with data's: nil if equal, ErrConflict
// if not.
func (s *S3Store) sameObject(ctx context.Context, key, versionID string, data []byte) error {
	body, _, _, err := minio.Core{Client: s.client}.GetObject(ctx, s.bucket, s.object(key), minio.GetObjectOptions{VersionID: versionID})
	if s3IsNotFound(err) && versionID == "" {
		// A conditional PUT failed, yet there is no current object: on
		// some servers a delete marker counts as existing.
		return fmt.Errorf("%w: the key exists but its latest version is a delete marker (the object was deleted; its locked versions remain)", ErrConflict)
	}
	if err != nil {
		return s3Classify(ctx, err)
	}
	defer body.Close()
	h := sha256.New()
	// One byte more than data shows a longer object without reading it all.
	n, err := io.Copy(h, io.LimitReader(body, int64(len(data))+1))
	if err != nil {
		return s3Classify(ctx, err)
	}
	want := sha256.Sum256(data)
	if n != int64(len(data)) || !bytes.Equal(h.Sum(nil), want[:]) {
		return fmt.Errorf("%w (SHA-256 of the stored bytes differs)", ErrConflict)
	}
	return nil
}

// Get implements Store: the object's latest version.
func (s *S3Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ValidateObjectKey(key); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	body, info, _, err := minio.Core{Client: s.client}.GetObject(ctx, s.bucket, s.object(key), minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("get %s from %s: %w", key, s.Describe(), s3Classify(ctx, err))
	}
	defer body.Close()
	// The length is the server's word, so it sizes the buffer only up to a
	// bound; a longer object grows it as the bytes arrive.
	buf := bytes.NewBuffer(make([]byte, 0, min(max(info.Size, 0), s3MaxPrealloc)+bytes.MinRead))
	if _, err := buf.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("get %s from %s: %w", key, s.Describe(), s3Classify(ctx, err))
	}
	return buf.Bytes(), nil
}

// List implements Store. Keys are relative to the store's prefix.
func (s *S3Store) List(ctx context.Context, prefix string) ([]string, error) {
	if err := validateListPrefix(prefix); err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	var keys []string
	err := s.list(ctx, prefix, false, func(o minio.ObjectInfo) {
		keys = append(keys, strings.TrimPrefix(o.Key, s.root))
	})
	if err != nil {
		return nil, fmt.Errorf("list %s in %s: %w", prefix, s.Describe(), err)
	}
	slices.Sort(keys)
	return keys, nil
}

// list calls f for each object (or version) under prefix.
func (s *S3Store) list(ctx context.Context, prefix string, versions bool, f func(minio.ObjectInfo)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// Cancelling stops minio-go's listing goroutine if we return early.
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for o := range s.client.ListObjects(lctx, s.bucket, minio.ListObjectsOptions{
		Prefix:       s.root + prefix,
		Recursive:    true,
		WithVersions: versions,
	}) {
		if o.Err != nil {
			return s3Classify(ctx, o.Err)
		}
		if strings.HasPrefix(o.Key, s.root) {
			f(o)
		}
	}
	return ctx.Err()
}

// s3Code returns the S3 error code in err, or "".
func s3Code(err error) string {
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		return er.Code
	}
	return ""
}

func s3IsNotFound(err error) bool {
	c := s3Code(err)
	return c == minio.NoSuchKey || c == minio.NoSuchVersion
}

// s3Classify wraps err from an S3 call so callers can branch on it: the
// context's error when ctx has ended, ErrNotFound for a missing object or
// version, ErrUnavailable for what may pass.
func s3Classify(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(cerr, context.DeadlineExceeded) {
			return fmt.Errorf("%w: %w", ErrUnavailable, cerr)
		}
		return cerr
	}
	var er minio.ErrorResponse
	if errors.As(err, &er) && er.Code != "" {
		switch {
		case s3IsNotFound(err):
			return fmt.Errorf("%w (%s)", ErrNotFound, er.Code)
		case er.StatusCode >= 500, er.StatusCode == http.StatusTooManyRequests, er.StatusCode == http.StatusRequestTimeout,
			er.Code == "ConditionalRequestConflict", er.Code == "SlowDown", er.Code == "RequestTimeout", er.Code == "Throttling":
			return fmt.Errorf("%w: %s: %w", ErrUnavailable, er.Code, err)
		}
		return fmt.Errorf("%s: %w", er.Code, err)
	}
	var netErr net.Error
	var urlErr *url.Error
	if errors.As(err, &netErr) || errors.As(err, &urlErr) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// ObjectVersion is one version of an object, or a delete marker, as the
// bucket lists it.
type ObjectVersion struct {
	Key            string // relative to the store's prefix
	VersionID      string
	IsLatest       bool
	IsDeleteMarker bool
	LastModified   time.Time
	Size           int64
}

// Versions lists every version and delete marker of the objects whose keys
// begin with prefix, by key, each key's newest first as the server orders
// them. A trail object should have exactly one version.
func (s *S3Store) Versions(ctx context.Context, prefix string) ([]ObjectVersion, error) {
	if err := validateListPrefix(prefix); err != nil {
		return nil, fmt.Errorf("list versions %s: %w", prefix, err)
	}
	var vs []ObjectVersion
	err := s.list(ctx, prefix, true, func(o minio.ObjectInfo) {
		vs = append(vs, ObjectVersion{
			Key:            strings.TrimPrefix(o.Key, s.root),
			VersionID:      o.VersionID,
			IsLatest:       o.IsLatest,
			IsDeleteMarker: o.IsDeleteMarker,
			LastModified:   o.LastModified,
			Size:           o.Size,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list versions %s in %s: %w", prefix, s.Describe(), err)
	}
	slices.SortStableFunc(vs, func(a, b ObjectVersion) int { return strings.Compare(a.Key, b.Key) })
	return vs, nil
}

// ObjectLock is what protects one object version.
type ObjectLock struct {
	Mode        string    // S3ModeCompliance, S3ModeGovernance, or "" if none
	RetainUntil time.Time // zero if none
	LegalHold   bool
}

// Lock returns the Object Lock state of one version of key (the latest if
// versionID is empty), or an error matching ErrNotFound if there is no
// such version. It asks the version's retention and legal-hold
// subresources rather than reading object headers: Versity Gateway 1.8
// answers HEAD and GET with the lock headers of the key's latest version,
// or none when a delete marker is latest, whatever version was asked for.
func (s *S3Store) Lock(ctx context.Context, key, versionID string) (ObjectLock, error) {
	var l ObjectLock
	if key == "" {
		return l, fmt.Errorf("get object lock: %w: empty key", ErrInvalidKey)
	}
	name := s.object(key)
	mode, until, err := s.client.GetObjectRetention(ctx, s.bucket, name, versionID)
	switch {
	case s3NoLock(err):
	case err != nil:
		return l, fmt.Errorf("get retention of %s version %q in %s: %w", key, versionID, s.Describe(), s3Classify(ctx, err))
	default:
		if mode != nil {
			l.Mode = string(*mode)
		}
		if until != nil {
			l.RetainUntil = *until
		}
	}
	hold, err := s.client.GetObjectLegalHold(ctx, s.bucket, name, minio.GetObjectLegalHoldOptions{VersionID: versionID})
	switch {
	case s3NoLock(err):
	case err != nil:
		return l, fmt.Errorf("get legal hold of %s version %q in %s: %w", key, versionID, s.Describe(), s3Classify(ctx, err))
	default:
		l.LegalHold = hold != nil && *hold == minio.LegalHoldEnabled
	}
	return l, nil
}

// s3NoLock reports whether err says a version has no retention or legal
// hold, which S3 answers with an error rather than an empty setting.
func s3NoLock(err error) bool {
	switch s3Code(err) {
	case "NoSuchObjectLockConfiguration", "ObjectLockConfigurationNotFoundError":
		return true
	}
	return false
}

// retentionRootFix lets minio-go read Versity Gateway's answer to
// GetObjectRetention, whose root element is <ObjectLockRetention> where
// S3 has <Retention>; the XML is otherwise the same. Other responses pass
// untouched.
type retentionRootFix struct{ http.RoundTripper }

func (t retentionRootFix) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.RoundTripper.RoundTrip(req)
	if err != nil || req.Method != http.MethodGet || resp.StatusCode != http.StatusOK || !req.URL.Query().Has("retention") {
		return resp, err
	}
	// A retention document is a few hundred bytes.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	body = bytes.Replace(body, []byte("<ObjectLockRetention"), []byte("<Retention"), 1)
	body = bytes.Replace(body, []byte("</ObjectLockRetention>"), []byte("</Retention>"), 1)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return resp, nil
}
