package replay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/lighthouse-fs/lighthouse/fsop"
	"github.com/lighthouse-fs/lighthouse/proxy"
)

// replayLine is one input line: a record or a divergence.
type replayLine struct {
	line int
	rec  *proxy.Record
	div  *proxy.Divergence
}

// scanReplayFile calls fn for every line of path, in file order; a bad
// line is an error naming its line number.
func scanReplayFile(path string, fn func(replayLine) error) error {
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInput, err)
	}
	defer fh.Close()
	r := bufio.NewReaderSize(fh, 1<<20)
	for n := 1; ; n++ {
		raw, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(raw)) > 0 {
			l, perr := parseReplayLine(raw)
			if perr != nil {
				return fmt.Errorf("%w: %s:%d: %w", ErrInput, path, n, perr)
			}
			l.line = n
			if err := fn(l); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
	}
}

// replayInput is what a first pass over the file found: record lines are
// only counted (they are streamed by the second pass), divergence lines
// kept.
type replayInput struct {
	records  int64
	recorded map[string]int64 // record lines by their class
	divs     []replayLine
}

func readReplayInput(path string) (*replayInput, error) {
	in := &replayInput{recorded: map[string]int64{}}
	err := scanReplayFile(path, func(l replayLine) error {
		if l.rec != nil {
			in.records++
			if l.rec.Class != "" {
				in.recorded[l.rec.Class]++
			}
		} else {
			in.divs = append(in.divs, l)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if in.records == 0 && len(in.divs) == 0 {
		return nil, fmt.Errorf("%w: %s: no lines to replay (want --record or --divergence-log JSON lines)", ErrInput, path)
	}
	return in, nil
}

func parseReplayLine(raw []byte) (replayLine, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return replayLine{}, fmt.Errorf("not a JSON object: %v", err)
	}
	if _, ok := fields["op"]; !ok {
		return replayLine{}, errors.New(`no "op" field: neither a --record line nor a --divergence-log line`)
	}
	_, hasRecent := fields["recent"]
	_, hasDiff := fields["diff"]
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if hasRecent || hasDiff {
		var d proxy.Divergence
		if err := dec.Decode(&d); err != nil {
			return replayLine{}, fmt.Errorf("divergence line: %v", err)
		}
		if err := checkReplayOp(&d.Op); err != nil {
			return replayLine{}, fmt.Errorf("divergence line: op: %w", err)
		}
		if d.Class == "" {
			return replayLine{}, errors.New(`divergence line: no "class"`)
		}
		for i := range d.Recent {
			if err := checkReplayOp(&d.Recent[i]); err != nil {
				return replayLine{}, fmt.Errorf("divergence line: recent op %d: %w", i, err)
			}
		}
		return replayLine{div: &d}, nil
	}
	var rec proxy.Record
	if err := dec.Decode(&rec); err != nil {
		return replayLine{}, fmt.Errorf("record line: %v", err)
	}
	if err := checkReplayOp(&rec.Op); err != nil {
		return replayLine{}, fmt.Errorf("record line: op: %w", err)
	}
	return replayLine{rec: &rec}, nil
}

func checkReplayOp(op *fsop.Op) error {
	if op.Kind == "" {
		return errors.New(`no op name ("op": "stat", ...)`)
	}
	return op.Validate()
}
