package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// leaks reports the first piece (5 bytes or more) of secret that out shows.
func leaks(out, secret string) string {
	const n = 5
	if len(secret) < n {
		if strings.Contains(out, secret) {
			return secret
		}
		return ""
	}
	for i := 0; i+n <= len(secret); i++ {
		if strings.Contains(out, secret[i:i+n]) {
			return secret[i : i+n]
		}
	}
	return ""
}

// TestSecretsNeverPrinted feeds every form of a secret-bearing value we
// know of (valid or not, on the command line or from the environment)
// through every output path of the CLI (stdout, stderr, -v logs, --json,
// --help) and checks the exit code and that no piece of the secret shows.
func TestSecretsNeverPrinted(t *testing.T) {
	dir := t.TempDir()
	okDB := "sqlite://" + filepath.Join(dir, "ok.db")
	if _, errOut, code := tandem(t, "--db", okDB, "schema", "ensure"); code != exitOK {
		t.Fatalf("schema ensure: %d %s", code, errOut)
	}
	const pw = "S3CRETpw"
	special := "p@ss:w/rd?#%&)x"
	dsns := []struct {
		name, dsn, secret string
		code              int
	}{
		{"scheme typo", "postgres//user:" + pw + "@127.0.0.1/db", pw, exitBadInput},
		{"scheme typo mysql", "mysql:/root:" + pw + "@127.0.0.1/db", pw, exitBadInput},
		{"no scheme", "user:" + pw + "@127.0.0.1:5432/db", pw, exitBadInput},
		{"no scheme query password", "127.0.0.1/db?password=" + pw, pw, exitBadInput},
		{"scheme with one colon", "postgres:user:" + pw + "@h/db", pw, exitBadInput},
		{"unencoded specials", "postgres://user:" + special + "@127.0.0.1/db", special, exitBadInput},
		{"unencoded specials mysql", "mysql://root:" + special + "@127.0.0.1/db", special, exitBadInput},
		{"slash in password parses as path", "postgres://user:12/" + pw + "@127.0.0.1/db", pw, exitBadInput},
		{"question mark in password", "postgres://user:12?" + pw + "@127.0.0.1/db", pw, exitBadInput},
		{"hash in password", "postgres://user:" + pw + "#x@127.0.0.1/db", pw, exitBadInput},
		{"at in password", "postgres://user:" + pw + "@x@127.0.0.1:1/db?sslmode=disable&connect_timeout=2", pw, exitUnreachable},
		{"bad percent escape", "mysql://root:" + pw + "%zz@127.0.0.1/db", pw, exitBadInput},
		{"space in password", "mysql://root:" + pw + " x@127.0.0.1/db", pw, exitBadInput},
		{"unknown engine", "oracle://u:" + pw + "@h/db", pw, exitBadInput},
		{"no host", "postgres://u:" + pw + "@/db", pw, exitBadInput},
		{"no database", "postgres://u:" + pw + "@127.0.0.1", pw, exitBadInput},
		{"line break", "postgres://u:" + pw + "@127.0.0.1/d\nb", pw, exitBadInput},
		{"unreachable postgres", "postgres://u:" + pw + "@127.0.0.1:1/db?sslmode=disable&connect_timeout=2", pw, exitUnreachable},
		{"unreachable postgres query password", "postgres://u@127.0.0.1:1/db?password=" + pw + "&sslmode=disable&connect_timeout=2", pw, exitUnreachable},
		{"unreachable postgres encoded specials", "postgres://u:p%40ss%3Aw%2Frd%3F%23%25%26%29x@127.0.0.1:1/db?sslmode=disable&connect_timeout=2", special, exitUnreachable},
		{"unreachable mysql", "mysql://root:" + pw + "@127.0.0.1:1/test?timeout=2s", pw, exitUnreachable},
	}
	nats := []struct {
		name, url, secret string
		code              int
	}{
		{"nats password", "nats://u:" + pw + "@127.0.0.1:1", pw, exitUnreachable},
		{"nats token", "nats://" + pw + "@127.0.0.1:1", pw, exitUnreachable},
		{"nats list", "nats://127.0.0.1:1,nats://u:" + pw + "@127.0.0.1:2", pw, exitUnreachable},
		{"nats bad escape", "nats://u:" + pw + "%zz@127.0.0.1:1", pw, exitBadInput},
		{"nats specials", "nats://u:" + special + "@127.0.0.1:1", special, exitBadInput},
		{"nats scheme typo", "nats//u:" + pw + "@127.0.0.1:1", pw, exitBadInput},
		{"nats no scheme", "u:" + pw + "@127.0.0.1:1", pw, exitBadInput},
	}
	check := func(t *testing.T, secret string, wantCode int, env map[string]string, args ...string) string {
		t.Helper()
		for k, v := range env {
			t.Setenv(k, v)
		}
		var out, errOut bytes.Buffer
		code := run(context.Background(), args, &out, &errOut)
		all := out.String() + errOut.String()
		if code != wantCode {
			t.Errorf("%q: exit %d, want %d\n%s", args, code, wantCode, all)
		}
		if piece := leaks(all, secret); piece != "" {
			t.Errorf("%q shows %q of the secret:\n%s", args, piece, all)
		}
		return all
	}
	for _, tc := range dsns {
		t.Run("db/"+tc.name, func(t *testing.T) {
			for _, flags := range [][]string{nil, {"--json"}, {"-v"}, {"-v", "--json"}} {
				args := append(append([]string{"--db", tc.dsn}, flags...), "services", "list")
				msg := check(t, tc.secret, tc.code, nil, args...)
				if tc.code == exitBadInput && !strings.Contains(msg, "bad database DSN") {
					t.Errorf("%q: no hint of a bad DSN: %s", args, msg)
				}
				check(t, tc.secret, tc.code, nil, append(append([]string{"--db", tc.dsn}, flags...), "status")...)
			}
			if tc.code == exitBadInput {
				check(t, tc.secret, exitBadInput, nil, "demo", "--fast", "--db", tc.dsn)
				check(t, tc.secret, exitBadInput, nil, "--json", "demo", "--fast", "--db", tc.dsn)
			}
			env := map[string]string{"TANDEM_DB": tc.dsn}
			check(t, tc.secret, tc.code, env, "services", "list")
			check(t, tc.secret, tc.code, env, "-v", "--json", "status")
			help := check(t, tc.secret, exitOK, env, "--help")
			if !strings.Contains(help, "(from TANDEM_DB)") {
				t.Errorf("--help does not say the default comes from TANDEM_DB:\n%s", help)
			}
			check(t, tc.secret, exitOK, env, "moves", "backfill", "--help")
		})
	}
	for _, tc := range nats {
		t.Run("nats/"+tc.name, func(t *testing.T) {
			for _, flags := range [][]string{nil, {"--json"}, {"-v"}} {
				args := append(append([]string{"--db", okDB, "--nats", tc.url}, flags...), "services", "list")
				msg := check(t, tc.secret, tc.code, nil, args...)
				if tc.code == exitUnreachable && (!strings.Contains(msg, "cannot reach NATS at nats://127.0.0.1:1") || strings.Contains(msg, "database unreachable") || strings.Contains(msg, "reach database")) {
					t.Errorf("%q: the error does not say NATS (or blames the database): %s", args, msg)
				}
			}
			env := map[string]string{"TANDEM_NATS": tc.url, "TANDEM_DB": okDB}
			check(t, tc.secret, tc.code, env, "services", "list")
			if tc.code == exitBadInput {
				// The demo takes --nats too (and ignores the environment).
				check(t, tc.secret, exitBadInput, nil, "demo", "--fast", "--nats", tc.url)
			}
			help := check(t, tc.secret, exitOK, env, "--help")
			if !strings.Contains(help, "(from TANDEM_NATS)") {
				t.Errorf("--help does not say the default comes from TANDEM_NATS:\n%s", help)
			}
		})
	}
}
