package capture

import (
	"bytes"
	"sync"
)

// decodePool holds buffers for decoding request bodies before forwarding.
var decodePool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// pathProfile returns the path of a request target, without its query,
// and the route's profile, detected from the path when it is auto.
func pathProfile(uri []byte, ro *RouteOptions) ([]byte, Profile) {
	path := uri
	if i := bytes.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	profile := ro.Profile
	if profile == ProfileAuto {
		profile = detectProfile(path)
	}
	return path, profile
}

// RequestedModel returns the model the request asks for, as the record's
// model.requested will name it, from what is known before the request is
// forwarded: the path (KServe, TF Serving, Triton, SageMaker), the request
// body (decoded if it is content-encoded, at most DefaultMaxBody bytes),
// the route's extract path for the model, or its model label. Policies
// that match on the model decide with it.
func (c *Capturer) RequestedModel(ex *Exchange, ro *RouteOptions) string {
	if ro == nil {
		ro = &RouteOptions{}
	}
	path, profile := pathProfile(ex.URI, ro)
	body := ex.RequestBody.Data
	fromBody := profile == ProfileOpenAI || profile == ProfileAnthropic || ro.Extract.Model != ""
	if enc := ex.RequestHeaders.Get("Content-Encoding"); fromBody && len(enc) > 0 {
		bp := decodePool.Get().(*[]byte)
		*bp, _ = Decode((*bp)[:0], body, enc, DefaultMaxBody)
		body = *bp
		defer func() {
			if cap(*bp) <= 1<<20 {
				decodePool.Put(bp)
			}
		}()
	}
	var model string
	switch profile {
	case ProfileKServe:
		model = kserve(path, nil, nil).requested
	case ProfileTriton:
		model = triton(path, nil, nil).requested
	case ProfileSageMaker:
		model = sageMaker(path, nil, nil, &Headers{}).requested
	case ProfileOpenAI, ProfileAnthropic:
		model = str(body, "model")
	}
	if ro.Extract.Model != "" {
		if r := extract(body, nil, ro.Extract.Model, false); r.Exists() {
			model = r.String()
		}
	}
	if model == "" {
		model = ro.Labels.Model
	}
	return model
}
