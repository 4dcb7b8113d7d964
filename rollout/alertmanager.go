package rollout

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
)

// TriggerFleet is the trigger of a rollback that Alertmanager asked for:
// a fleet rule (deploy/prometheus/fleet.yml) fired on some node's evidence.
const TriggerFleet = "fleet"

// ActionLabel and ActionFleetRollback: an alert carrying
// action="fleet_rollback" rolls back every proxy it reaches.
const (
	ActionLabel         = "action"
	ActionFleetRollback = "fleet_rollback"
)

// AlertmanagerMessage is the body of Alertmanager's webhook (version 4):
// the fields this receiver reads; others are ignored, as Alertmanager adds
// some between releases.
type AlertmanagerMessage struct {
	Version string              `json:"version"`
	Status  string              `json:"status"`
	Alerts  []AlertmanagerAlert `json:"alerts"`
}

// AlertmanagerAlert is one alert of a notification.
type AlertmanagerAlert struct {
	Status      string            `json:"status"` // firing or resolved
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// WebhookResult is the answer to POST /admin/alertmanager.
type WebhookResult struct {
	RolledBack bool   `json:"rolled_back"` // this notification rolled back
	Already    bool   `json:"already_rolled_back,omitempty"`
	Reason     string `json:"reason"`
	State      State  `json:"state"`
}

// fleetRollback rolls back unless a rollback already holds (Alertmanager
// repeats a notification while the alert fires: one decision, not one per
// repeat). It reports whether it decided.
func (c *Controller) fleetRollback(reason string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state.RolledBack && c.state.Weight == 0 {
		return false
	}
	c.decide("rollback", TriggerFleet, 0, reason)
	return true
}

// alertmanagerWebhook serves POST /admin/alertmanager: a firing alert
// labelled action="fleet_rollback" rolls back (persisted like any
// decision); a resolved one changes nothing (promoting again is an
// operator's decision). A body that is not a version 4 notification is a
// 400 and changes nothing.
func (c *Controller) alertmanagerWebhook(w http.ResponseWriter, r *http.Request) {
	var msg AlertmanagerMessage
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&msg); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad Alertmanager notification: " + err.Error()})
		return
	}
	if msg.Version != "4" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("Alertmanager webhook version %q, want \"4\"", msg.Version)})
		return
	}
	var why []string
	for _, a := range msg.Alerts {
		if a.Status == "firing" && a.Labels[ActionLabel] == ActionFleetRollback {
			why = append(why, describeAlert(a))
		}
	}
	res := WebhookResult{Reason: "no firing alert with " + ActionLabel + "=" + ActionFleetRollback}
	if len(why) > 0 {
		res.Reason = "alertmanager: " + strings.Join(why, "; ")
		res.RolledBack = c.fleetRollback(res.Reason)
		res.Already = !res.RolledBack
	}
	res.State = c.Status().State
	writeJSON(w, http.StatusOK, res)
}

// describeAlert is an alert's name, labels and summary, for the decision's
// reason.
func describeAlert(a AlertmanagerAlert) string {
	var kv []string
	for k, v := range a.Labels {
		if k != "alertname" && k != ActionLabel && k != "severity" {
			kv = append(kv, k+"="+v)
		}
	}
	sort.Strings(kv)
	s := a.Labels["alertname"] + "{" + strings.Join(kv, ",") + "}"
	if sum := a.Annotations["summary"]; sum != "" {
		s += ": " + sum
	}
	return s
}
