package fsop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// ServeOps answers POST /v1/ops, the client API that a bridge and the
// proxy share (docs/protocol.md), so a client cannot tell them apart. It
// decodes one op or a batch of at most maxBody bytes (400 if malformed,
// 413 if too large), runs each op in order with exec and writes the
// results. An exec error ends a batch, answering 400 when refused(err)
// (a bad request) and 503 otherwise (the op may or may not have run),
// with the results of the ops before it.
func ServeOps(w http.ResponseWriter, r *http.Request, maxBody int64,
	exec func(ctx context.Context, op *Op) (Result, error), refused func(error) bool) {
	ops, batch, err := DecodeRequest(r.Body, maxBody)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, ErrTooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		writeHTTPError(w, status, err.Error())
		return
	}
	results := make([]Result, 0, len(ops))
	for i := range ops {
		res, err := exec(r.Context(), &ops[i])
		if err != nil {
			status := http.StatusServiceUnavailable
			if refused(err) {
				status = http.StatusBadRequest
			}
			if !batch {
				writeHTTPError(w, status, err.Error())
				return
			}
			// The ops before this one ran: say what they did.
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(struct {
				Error   string   `json:"error"`
				Results []Result `json:"results"`
			}{fmt.Sprintf("op %d: %v", i, err), results})
			return
		}
		results = append(results, res)
	}
	w.Header().Set("Content-Type", "application/json")
	EncodeResults(w, results, batch)
}

func writeHTTPError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
