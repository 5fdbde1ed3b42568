package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/services"
)

// jsonSchema is the version of every JSON document tandem prints: each
// one is an object whose first keys are "schema" and "command". A change
// that removes or retypes a key gets a new version; new keys do not.
const jsonSchema = "tandem.cli/v1"

// emit prints v as JSON under --json, and otherwise writes it for a person
// with text; then it returns then (nil, or the command's verdict from
// blocked, attention or refused), so a command reports first and sets its
// exit code after.
func (a *app) emit(v any, text func(w io.Writer), then error) error {
	if a.json {
		if err := a.printJSON(v); err != nil {
			return err
		}
	} else {
		text(a.stdout)
	}
	return then
}

// printText prints a line for a person.
func (a *app) printText(line string) { fmt.Fprintln(a.stdout, line) }

// gateRefused prints a closed gate of an operation (a backfill, a verify,
// a finalize) and returns its verdict: exit 2 when it can never open as
// things stand, 5 when an operator must act, 3 when waiting opens it.
func (a *app) gateRefused(ge *dualwrite.GateError) error {
	g := gateView(ge.Gate)
	if a.json {
		if err := a.printJSON(gateDoc{Gate: g}); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(a.stdout, ge.Error())
	}
	return verdict(g.Blockers, ge.Error())
}

// printJSON prints v as one JSON document for the running command.
func (a *app) printJSON(v any) error {
	return writeDoc(a.stdout, a.command, v, true)
}

// writeDoc writes v, which must marshal to a JSON object, as a document of
// command: {"schema": ..., "command": ..., v's keys...}. indent prints it
// on several lines; otherwise it is one line (for event streams).
func writeDoc(w io.Writer, command string, v any, indent bool) error {
	body, err := marshal(v)
	if err != nil {
		return err
	}
	if len(body) < 2 || body[0] != '{' {
		return fmt.Errorf("tandem: JSON output of %s is not an object", command)
	}
	head, _ := marshal(struct {
		Schema  string  `json:"schema"`
		Command *string `json:"command"` // null when the command line named none
	}{jsonSchema, strOrNil(command)})
	doc := append([]byte{}, head[:len(head)-1]...)
	if string(body) == "{}" {
		doc = append(doc, '}')
	} else {
		doc = append(doc, ',')
		doc = append(doc, body[1:]...)
	}
	var buf bytes.Buffer
	if indent {
		if err := json.Indent(&buf, doc, "", "  "); err != nil {
			return err
		}
	} else {
		buf.Write(doc)
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}

// marshal is json.Marshal without HTML escaping: a DSN's "&" stays "&".
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// eventWriter prints a stream of JSON objects, one a line, each with an
// "event" key; the last one a stream prints is its "result".
type eventWriter struct {
	w       io.Writer
	command string
	mu      sync.Mutex
}

func (a *app) events() *eventWriter { return &eventWriter{w: a.stdout, command: a.command} }

// emit writes one event: v's keys after "schema", "command" and "event".
func (e *eventWriter) emit(event string, v any) error {
	body, err := marshal(v)
	if err != nil {
		return err
	}
	ev, _ := marshal(event)
	fields := []byte(`{"event":` + string(ev))
	if string(body) != "{}" {
		fields = append(fields, ',')
		fields = append(fields, body[1:]...)
	} else {
		fields = append(fields, '}')
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return writeDoc(e.w, e.command, json.RawMessage(fields), false)
}

// errorDoc is the JSON error object printed on stderr under --json, for
// every exit code but 0.
type errorDoc struct {
	Code    string `json:"code"`
	Exit    int    `json:"exit"`
	Message string `json:"message"`
}

// printError writes err as one JSON object on w.
func printError(w io.Writer, command string, code string, exit int, err error) {
	_ = writeDoc(w, command, errorDoc{Code: code, Exit: exit, Message: err.Error()}, false)
}

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

// ago says how long ago t was, for a person ("3 minutes ago"); "-" for a
// time never set.
func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return humanize.Time(t)
}

func apisText(apis []apiJSON) string {
	var parts []string
	for _, a := range apis {
		if a.Oldest == a.Current {
			parts = append(parts, a.Name+" "+a.Current)
		} else {
			parts = append(parts, fmt.Sprintf("%s %s (accepts %s+)", a.Name, a.Current, a.Oldest))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func printInstances(w io.Writer, ins []services.Instance, indent string) {
	printInstancesJSON(w, instancesView(ins), indent)
}

func printInstancesJSON(w io.Writer, ins []instanceJSON, indent string) {
	tw := table(w)
	fmt.Fprintf(tw, "%sID\tSERVICE\tHOST\tRELEASE\tSTATE\tAPIS\tSTARTED\tLAST HEARTBEAT\tINCARNATION\tPID\tFREEZE ACK\n", indent)
	for _, in := range ins {
		ack := "-"
		if in.Freeze > 0 {
			ack = fmt.Sprint(in.Freeze)
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", indent, in.ID, in.Service, in.Host, in.Release, in.State,
			apisText(in.APIs), in.StartedAt.String(), in.HeartbeatAt.ago(), in.Incarnation, in.PID, ack)
	}
	tw.Flush()
}
