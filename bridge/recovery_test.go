package bridge_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lighthouse-fs/lighthouse/fsop"
)

// TestDamagedLogRefusedThenRepaired: a bridge whose store log is damaged
// before its end refuses to start, naming the segment, the offset and the
// repair command; after `lighthouse store repair` it serves, but /readyz
// answers 503, /v1/info reports data_loss and the metrics count the bytes
// moved aside, until a whole-store restore from a good copy.
func TestDamagedLogRefusedThenRepaired(t *testing.T) {
	requireFUSE(t)
	dir := t.TempDir()
	b := startBridge(t, bridgeOpts{Backend: "gofuse", Dir: dir})
	var ops []fsop.Op
	for i := range 300 {
		ops = append(ops, fsop.Op{Kind: fsop.WriteFile, Path: fmt.Sprintf("f%03d", i), Data: []byte(fmt.Sprintf("acknowledged %d", i))})
	}
	b.batch(t, ops...)
	good, _ := getSnapshot(t, b)
	if !b.Terminate() {
		t.Fatal("bridge did not stop")
	}
	segs, _ := filepath.Glob(filepath.Join(b.Data, "wal-*.log"))
	var seg string
	var size int64
	for _, s := range segs {
		if st, _ := os.Stat(s); st.Size() > size {
			seg, size = s, st.Size()
		}
	}
	data, _ := os.ReadFile(seg)
	data[len(data)*3/10] ^= 0x04
	os.WriteFile(seg, data, 0o644)

	cmd := exec.Command(lighthouseBin, "bridge", "--listen", "127.0.0.1:0", "--mount", b.Mount, "--data", b.Data, "--backend", "gofuse")
	cmd.Env, cmd.Dir = bridgeEnv(nil), "/"
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("a bridge on a log damaged before its end started:\n%s", out)
	}
	for _, want := range []string{filepath.Base(seg), "offset", "lighthouse store repair --dir " + b.Data} {
		if !strings.Contains(string(out), want) {
			t.Errorf("refusal does not say %q:\n%s", want, out)
		}
	}

	out, err = exec.Command(lighthouseBin, "store", "repair", "--dir", b.Data).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "repaired") {
		t.Fatalf("lighthouse store repair: %v\n%s", err, out)
	}
	r := startBridge(t, bridgeOpts{Backend: "gofuse", Dir: dir, Degraded: true})
	status, body, _ := r.get("/readyz")
	if status != http.StatusServiceUnavailable || !strings.Contains(string(body), "data loss") {
		t.Errorf("/readyz after a repair: %d %s, want 503 naming the data loss", status, body)
	}
	var info fsop.BridgeInfo
	_, body, _ = r.get("/v1/info")
	if err := json.Unmarshal(body, &info); err != nil || info.DataLoss == nil || info.DataLoss.Bytes == 0 || info.DataLoss.Segment != filepath.Base(seg) {
		t.Errorf("/v1/info after a repair: %s (%v)", body, err)
	}
	if v, _ := r.metric(t, `lighthouse_store_recovery_dropped_bytes_total{kind="repaired"}`); v != 0 {
		t.Errorf("repaired bytes counted again by a later start: %v", v)
	}
	if v, _ := r.metric(t, "lighthouse_store_data_loss"); v != 1 {
		t.Errorf("lighthouse_store_data_loss = %v, want 1", v)
	}
	req, _ := http.NewRequest(http.MethodPut, r.URL+"/v1/snapshot", strings.NewReader(string(good)))
	if status, resp, err := doRequest(req); err != nil || status != http.StatusOK {
		t.Fatalf("restore from the good copy: %d %s %v", status, resp, err)
	}
	if status, body, _ := r.get("/readyz"); status != http.StatusOK {
		t.Errorf("/readyz after a restore from a good copy: %d %s", status, body)
	}
	if res := r.op(t, fsop.Op{Kind: fsop.ReadFile, Path: "f299"}); string(res.Data) != "acknowledged 299" {
		t.Errorf("f299 after the restore: %q %s", res.Data, res.Errno)
	}
}
