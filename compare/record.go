package compare

import (
	"time"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// Outcome is one bridge's answer to an op, as the logs keep it.
type Outcome struct {
	Backend string       `json:"backend"`
	Role    string       `json:"role"`
	Result  *fsop.Result `json:"result,omitempty"`
	Error   string       `json:"error,omitempty"`
}

// Divergence is one difference between the bridges: everything needed to
// understand it and to replay it (`lighthouse replay`). One line of the
// proxy's divergence log.
type Divergence struct {
	Time     time.Time `json:"time"`
	Seq      uint64    `json:"seq"`
	Op       fsop.Op   `json:"op"`
	Class    string    `json:"class"`
	Readback *fsop.Op  `json:"readback,omitempty"` // for class state: the read-back op that differed
	Serving  Outcome   `json:"serving"`
	Mirror   Outcome   `json:"mirror"`
	Diff     string    `json:"diff"`
	Allowed  string    `json:"allowed,omitempty"` // the allowlist's reason, if allowed
	// Fault names the backend the evidence blames: its state does not hold
	// what the acknowledged op asked for while the other's does ("" when
	// the evidence does not tell).
	Fault string `json:"fault,omitempty"`
	// Recent are the ops on the same paths since the last resync, oldest
	// first: replaying them then Op reproduces the divergence.
	Recent []fsop.Op `json:"recent"`
}

// Record is one line of the proxy's --record trace: an op and what both
// bridges answered. `lighthouse replay` reads these (and Divergence lines).
type Record struct {
	Time    time.Time `json:"time"`
	Seq     uint64    `json:"seq"`
	Client  string    `json:"client,omitempty"`
	Op      fsop.Op   `json:"op"`
	Serving Outcome   `json:"serving"`
	Mirror  *Outcome  `json:"mirror,omitempty"`
	Class   string    `json:"class,omitempty"`   // divergence class, if any
	Skipped string    `json:"skipped,omitempty"` // why it was not compared
}
