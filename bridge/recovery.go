package bridge

// What the store's recovery found, reported: a torn tail cut is logged by
// the store (WARN) and counted; a repaired damage (acknowledged records
// moved aside) makes /readyz fail and /v1/info say so until the store is
// restored from a good copy, so no proxy takes this bridge as a resync's
// source.

import (
	"fmt"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// reportRecovery counts what the store's recovery removed.
func (b *Bridge) reportRecovery() {
	rec := b.st.Recovery()
	b.metrics.RecoveryDropped.WithLabelValues("torn_tail").Add(float64(rec.CutBytes))
	b.metrics.RecoveryDropped.WithLabelValues("repaired").Add(float64(rec.RepairedBytes))
	if loss := rec.DataLoss; loss != nil {
		b.log.Error("STORE DATA LOSS: a repair of the damaged log moved acknowledged records aside; not ready until restored from a good copy",
			"segment", loss.Segment, "offset", loss.Offset, "after_lsn", loss.AfterLSN, "bytes", loss.Bytes, "quarantine", loss.Quarantine)
	}
	b.dataLoss()
}

// dataLoss is the store's recorded data loss for /v1/info (nil: none),
// and keeps the gauge in step.
func (b *Bridge) dataLoss() *fsop.DataLoss {
	loss := b.st.DataLoss()
	if loss == nil {
		b.metrics.DataLoss.Set(0)
		return nil
	}
	b.metrics.DataLoss.Set(1)
	return &fsop.DataLoss{Time: loss.Time, Segment: loss.Segment, Offset: loss.Offset,
		AfterLSN: loss.AfterLSN, Bytes: loss.Bytes, Quarantine: loss.Quarantine}
}

// dataLossErr is /readyz's answer while the store reports data loss.
func (b *Bridge) dataLossErr() error {
	loss := b.dataLoss()
	if loss == nil {
		return nil
	}
	return fmt.Errorf("store data loss: a repair moved %d bytes of acknowledged log after lsn %d (segment %s, offset %d) to %s; restore this bridge from a good copy (PUT /v1/snapshot) or clear it with lighthouse store repair --clear-loss",
		loss.Bytes, loss.AfterLSN, loss.Segment, loss.Offset, loss.Quarantine)
}
