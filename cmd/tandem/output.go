package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/services"
)

// emit prints v as JSON under --json, and otherwise writes it for a person
// with text; then it returns then (nil, or a *blockedError), so a command
// reports first and sets its exit code after.
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

// blockedBy turns a closed gate into the blocked exit code, after printing
// what blocks; any other error is returned as is, through wrap.
func (a *app) blockedBy(err error, wrap func(error) error) error {
	var ge *dualwrite.GateError
	if errors.As(err, &ge) {
		fmt.Fprintln(a.stdout, ge.Error())
		return &blockedError{reason: ge.Error()}
	}
	return wrap(err)
}

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := time.Since(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm ago", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

func apisText(apis []services.API) string {
	var parts []string
	for _, a := range apis {
		if a.Oldest == a.Current {
			parts = append(parts, a.Name+" "+a.Current.String())
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
	tw := table(w)
	fmt.Fprintf(tw, "%sID\tSERVICE\tHOST\tRELEASE\tSTATE\tAPIS\tSTARTED\tLAST HEARTBEAT\tINCARNATION\tPID\n", indent)
	for _, in := range ins {
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%d\t%d\n", indent, in.ID, in.Service, in.Host, in.Release, in.State,
			apisText(in.APIs), in.StartedAt.Format(time.RFC3339), ago(in.HeartbeatAt), in.Incarnation, in.PID)
	}
	tw.Flush()
}
