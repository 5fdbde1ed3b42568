package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
)

// TestTourRuns runs the tour as the README shows it.
func TestTourRuns(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	err = run(context.Background())
	os.Stdout = stdout
	w.Close()
	out, _ := io.ReadAll(r)
	if err != nil {
		t.Fatalf("the tour failed: %v\n%s", err, out)
	}
	if want := "volume: cap 3.2 (known: true), floor 42\n"; string(out) != want {
		t.Fatalf("the tour printed %q, want %q", out, want)
	}
}

// TestReadmeShowsTheTour keeps the README's tour equal to this file, so
// what a reader copies is what compiles and runs here.
func TestReadmeShowsTheTour(t *testing.T) {
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const marker = "<!-- the code below is examples/tour/main.go -->\n\n```go\n"
	_, after, ok := bytes.Cut(readme, []byte(marker))
	if !ok {
		t.Fatalf("README.md lacks %q before the tour's code", marker)
	}
	block, _, ok := bytes.Cut(after, []byte("```\n"))
	if !ok {
		t.Fatal("README.md: the tour's code block does not end")
	}
	if got := string(block); got != string(src) {
		t.Fatalf("README.md's tour differs from examples/tour/main.go; paste the file into the README between the marker and the closing fence.\nfirst difference at line %d", firstDiff(got, string(src)))
	}
}

func firstDiff(a, b string) int {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return i + 1
		}
	}
	return min(len(al), len(bl)) + 1
}
