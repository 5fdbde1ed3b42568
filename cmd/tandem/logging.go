package main

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"
)

// Log formats of --log-format.
const (
	logText = "text"
	logJSON = "json"
)

// addLogFlag adds --log-format and checks it before any command runs, so a
// bad value is refused (exit 2) before anything is opened.
func (a *app) addLogFlag(root *cobra.Command) {
	root.PersistentFlags().StringVar(&a.logFormat, "log-format", envOr("TANDEM_LOG_FORMAT", logText),
		"form of the -v log lines on stderr: text or json (env TANDEM_LOG_FORMAT)")
	_ = root.RegisterFlagCompletionFunc("log-format", cobra.FixedCompletions([]string{logText, logJSON}, cobra.ShellCompDirectiveNoFileComp))
	next := root.PersistentPreRunE
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if err := checkLogFormat(a.logFormat, cmd.Flags().Changed("log-format")); err != nil {
			return err
		}
		if next != nil {
			return next(cmd, args)
		}
		return nil
	}
}

func checkLogFormat(v string, fromFlag bool) error {
	switch v {
	case logText, logJSON:
		return nil
	}
	from := "--log-format " + v
	if !fromFlag {
		from = "TANDEM_LOG_FORMAT=" + v
	}
	return &usageError{fmt.Errorf("%s: want text or json (for example: tandem -v --log-format json status)", from)}
}

// logger is the command's logger: silent without -v; with it, every level
// on stderr, as text or JSON lines (--log-format). stdout keeps the results.
func (a *app) logger() *slog.Logger {
	if a.log != nil {
		return a.log
	}
	switch {
	case !a.verbose:
		a.log = slog.New(slog.DiscardHandler)
	case a.logFormat == logJSON:
		a.log = slog.New(slog.NewJSONHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	default:
		a.log = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return a.log
}
