package gateway

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/auditgate/auditgate/worm"
)

// TrailReader is what the admin API reads from the trail for auditors.
// worm.Appender implements it.
type TrailReader interface {
	// Recent returns up to n of the latest records written, oldest first.
	Recent(n int) []worm.RecentRecord
	// LatestCheckpoint returns the latest signed checkpoint as stored.
	LatestCheckpoint(ctx context.Context) ([]byte, error)
}

// maxRecentRecords caps the limit a client may ask of /api/v1/records: the
// trail keeps this many of its latest records.
const maxRecentRecords = 256

// recentRecords serves the latest records as JSON lines, oldest first:
// {"index":N,"record":{…}} with the record exactly as written.
func (a *Admin) recentRecords(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxRecentRecords {
			writeAdminError(w, http.StatusBadRequest, "limit must be a whole number from 1 to "+strconv.Itoa(maxRecentRecords))
			return
		}
		limit = n
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	var b []byte
	for _, rec := range a.trail.Recent(limit) {
		b = append(b[:0], `{"index":`...)
		b = strconv.AppendUint(b, rec.Index, 10)
		b = append(b, `,"record":`...)
		b = append(b, rec.Line...)
		b = append(b, "}\n"...)
		if _, err := w.Write(b); err != nil {
			return
		}
	}
}

// latestCheckpoint serves the stream's latest signed checkpoint, the
// c2sp.org/tlog-checkpoint note as stored, for an auditor to keep and
// later pass to verify --since-checkpoint.
func (a *Admin) latestCheckpoint(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	cp, err := a.trail.LatestCheckpoint(ctx)
	switch {
	case errors.Is(err, worm.ErrNotFound):
		writeAdminError(w, http.StatusNotFound, "no checkpoint yet: the trail has not sealed a segment")
		return
	case err != nil:
		a.log.Warn("read the latest checkpoint", zap.Error(err))
		writeAdminError(w, http.StatusBadGateway, "the trail's store did not answer; retry later")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(cp)
}
