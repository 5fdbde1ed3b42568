package demo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/tandem-go/tandem/move"
)

// Summary is what a run measured.
type Summary struct {
	Engine  string        `json:"engine"`
	Elapsed time.Duration `json:"elapsed_ns"`
	Chaos   bool          `json:"chaos"`
	Seed    uint64        `json:"seed"`
	// Requests counts logical requests, each once however often it was
	// tried: RPC calls and direct database operations.
	Requests    int64 `json:"requests"`
	RPCRequests int64 `json:"rpc_requests"`
	DBRequests  int64 `json:"db_requests"`
	// Failed requests never succeeded within the deadline; Retries counts
	// the extra attempts of the ones that did (or did not).
	Failed  int64 `json:"failed"`
	Retries int64 `json:"retries"`
	// WritesChecked is the keys whose last acknowledged value was read
	// back from price_cents after contract; SeedsChecked the seeded rows,
	// which only the backfill wrote to price_cents.
	WritesChecked int64 `json:"writes_checked"`
	// ReadsChecked is the reads compared with the last acknowledged write.
	ReadsChecked int64 `json:"reads_checked"`
	SeedsChecked int64 `json:"seeds_checked"`
	LostWrites   int64 `json:"lost_writes"`
	// LateRefused counts late duplicates the store refused: attempts that
	// reached a server after their retry had succeeded and a newer write
	// followed (at-least-once delivery under load).
	LateRefused int64 `json:"late_refused"`
	WrongReads  int64 `json:"wrong_reads"`
	// FailedWrites counts the write attempts whose caller saw them fail
	// (timed out, refused, disconnected); GhostWrites those of them that
	// the server applied after that.
	FailedWrites int64 `json:"failed_writes"`
	GhostWrites  int64 `json:"ghost_writes"`
	// Histories is the linearizability check of every key's history.
	Histories HistoryResult `json:"histories"`
	// NATSInFlight is how many writes were in flight when NATS stopped.
	NATSInFlight int64        `json:"nats_in_flight,omitempty"`
	Kills        int          `json:"kills"`
	NATSRestarts int          `json:"nats_restarts"`
	Moves        []MoveResult `json:"moves"`
	// Freeze is the rollout's step that ran under a write freeze; nil
	// when the run never reached it.
	Freeze *FreezeResult `json:"freeze"`
	// Problems lists the first failures, lost writes and wrong reads.
	Problems []string `json:"problems,omitempty"`
}

// MoveResult is where one move ended and when it entered each phase.
type MoveResult struct {
	Name     string        `json:"name"`
	Table    string        `json:"table"`
	Triggers bool          `json:"triggers"`
	Phase    move.Phase    `json:"phase"`
	Entered  []PhaseTiming `json:"entered"`
}

// PhaseTiming is when, after the start, a move entered a phase.
type PhaseTiming struct {
	Phase move.Phase    `json:"phase"`
	At    time.Duration `json:"at_ns"`
}

// OK reports a clean run: every move contracted, no failed request, no
// lost write, no wrong read, no ghost write, every key's history
// linearizable, and nothing else went wrong.
func (s Summary) OK() bool {
	for _, m := range s.Moves {
		if m.Phase != move.Contracted {
			return false
		}
	}
	if s.Freeze != nil && s.Freeze.AppliedWhileFrozen > 0 {
		return false
	}
	return len(s.Moves) > 0 && s.Failed == 0 && s.LostWrites == 0 && s.WrongReads == 0 &&
		s.GhostWrites == 0 && s.Histories.Linearizable && len(s.Problems) == 0
}

// WriteText prints the summary for a person.
func (s Summary) WriteText(w io.Writer) {
	fmt.Fprintf(w, "\nsummary (%s, %s", s.Engine, s.Elapsed.Round(100*time.Millisecond))
	if s.Chaos {
		fmt.Fprintf(w, ", chaos seed %d: %d instance kills, %d NATS restarts", s.Seed, s.Kills, s.NATSRestarts)
		if s.NATSRestarts > 0 {
			fmt.Fprintf(w, " with %s in flight", plural(s.NATSInFlight, "write"))
		}
	}
	fmt.Fprintln(w, ")")
	fmt.Fprintf(w, "  requests sent    %7d  (%d RPC, %d database)\n", s.Requests, s.RPCRequests, s.DBRequests)
	fmt.Fprintf(w, "  requests failed  %7d\n", s.Failed)
	fmt.Fprintf(w, "  retries          %7d  (extra attempts of requests that timed out or hit a restarting instance)\n", s.Retries)
	fmt.Fprintf(w, "  writes checked   %7d  (each key's last acknowledged value, read from price_cents after contract)\n", s.WritesChecked)
	fmt.Fprintf(w, "  seeded rows      %7d  (written by release 41 only, moved by the backfill, read from price_cents)\n", s.SeedsChecked)
	fmt.Fprintf(w, "  lost writes      %7d\n", s.LostWrites)
	if s.LateRefused > 0 {
		fmt.Fprintf(w, "  late duplicates  %7d  (attempts that arrived after their retry and a newer write; refused by the store's version check)\n", s.LateRefused)
	}
	fmt.Fprintf(w, "  wrong reads      %7d  (of %d reads compared with the last acknowledged write)\n", s.WrongReads, s.ReadsChecked)
	if f := s.Freeze; f != nil {
		fmt.Fprintf(w, "  frozen writes    %7d  (refused with dualwrite.ErrFrozen, not failures, while %s went %s -> %s under a write freeze held %.1fs; %s of its table answered meanwhile; %d applied while frozen)\n",
			f.RefusedWrites, f.Move, f.From, f.To, f.Held.Seconds(), plural(f.Reads, "read"), f.AppliedWhileFrozen)
	}
	for _, m := range s.Moves {
		how := "without triggers"
		if m.Triggers {
			how = "with triggers"
		}
		var at []string
		for _, e := range m.Entered {
			at = append(at, fmt.Sprintf("%s %.1fs", e.Phase, e.At.Seconds()))
		}
		fmt.Fprintf(w, "  %-20s %s, %s: %s\n", m.Name, m.Phase, how, strings.Join(at, ", "))
	}
	h := s.Histories
	verdict := "linearizable"
	switch {
	case len(h.Failures) > 0:
		verdict = fmt.Sprintf("NOT linearizable: %d keys fail", len(h.Failures))
	case len(h.Undecided) > 0:
		verdict = fmt.Sprintf("undecided: %d keys not decided in time (%s)", len(h.Undecided), strings.Join(h.Undecided, ", "))
	}
	fmt.Fprintf(w, "  histories checked: %d keys, %s  (%d operations; %s of unknown outcome, allowed to land any time later)\n", h.Keys, verdict, h.Operations, plural(int64(h.UnknownWrites), "write"))
	for _, f := range h.Failures {
		fmt.Fprintf(w, "    history of %s is not linearizable (%d operations)", f.Key, f.Operations)
		if len(f.Minimal) > 0 {
			fmt.Fprintf(w, "; its smallest failing part, %s:", plural(int64(len(f.Minimal)), "operation"))
		}
		fmt.Fprintln(w)
		for _, op := range f.Minimal {
			fmt.Fprintf(w, "      %s\n", op)
		}
		if f.Visualization != "" {
			fmt.Fprintf(w, "      the whole history, with porcupine's partial linearizations: %s\n", f.Visualization)
		}
	}
	fmt.Fprintf(w, "  ghost writes %d  (of %s whose caller saw them fail, applied by a server after that)\n", s.GhostWrites, plural(s.FailedWrites, "write"))
	for _, p := range s.Problems {
		fmt.Fprintf(w, "  problem: %s\n", p)
	}
	if s.OK() {
		fmt.Fprintln(w, "result: OK: nothing failed, nothing lost, no wrong read, no ghost write, every history linearizable")
	} else {
		fmt.Fprintln(w, "result: FAILED")
	}
}

// summary reads every key back from the final column and sums up.
func (r *run) summary(ctx context.Context) Summary {
	s := Summary{Engine: string(r.engine), Chaos: r.cfg.Chaos, Seed: r.cfg.Seed, Kills: r.kills, NATSRestarts: r.natsRestarts}
	for _, m := range r.moves {
		p, err := r.mg.Phase(ctx, m.Name)
		if err != nil {
			r.problem("read phase of %s: %v", m.Name, err)
		}
		mr := MoveResult{Name: m.Name, Table: m.Table, Triggers: m.Triggers, Phase: p}
		r.phaseMu.Lock()
		for _, pm := range r.phaseAt[m.Name] {
			mr.Entered = append(mr.Entered, PhaseTiming{Phase: pm.phase, At: pm.at})
		}
		r.phaseMu.Unlock()
		s.Moves = append(s.Moves, mr)
	}
	r.check(ctx, &s)
	r.ghostCheck(&s)
	s.Histories = r.historyCheck()
	s.NATSInFlight = r.natsInFlight
	s.RPCRequests, s.DBRequests = r.st.rpcSent.Load(), r.st.dbSent.Load()
	s.Requests = s.RPCRequests + s.DBRequests
	s.Failed, s.Retries, s.WrongReads = r.st.failed.Load(), r.st.retries.Load(), r.st.wrongReads.Load()
	s.ReadsChecked, s.LateRefused = r.st.readsChecked.Load(), r.st.late.Load()
	s.Freeze = r.freezeResult()
	s.Elapsed = r.tl.since()
	r.probMu.Lock()
	s.Problems = slices.Clone(r.probs)
	r.probMu.Unlock()
	return s
}

// check reads every written key and every seeded row from price_cents,
// for each move that reached contract; a move that did not (the run was
// interrupted, or a gate never opened) is reported instead, since its
// price_cents need not be complete yet.
func (r *run) check(ctx context.Context, s *Summary) {
	for i, m := range r.moves {
		if p := s.Moves[i].Phase; p != move.Contracted {
			r.problem("%s ended at %s, not contracted: its final column was not checked", m.Name, p)
			continue
		}
		q := r.db.Rebind(`SELECT id, name, quantity, price_cents FROM ` + m.Table)
		readAt := time.Now()
		rows, err := r.db.QueryxContext(ctx, q)
		if err != nil {
			r.problem("final read of %s: %v", m.Table, err)
			continue
		}
		got := map[string]value{}
		for rows.Next() {
			var id string
			var v value
			var cents sql.NullInt64
			if err := rows.Scan(&id, &v.name, &v.qty, &cents); err != nil {
				r.problem("final read of %s: %v", m.Table, err)
				break
			}
			v.cents = cents.Int64
			if !cents.Valid {
				v.cents = -1
			}
			got[id] = v
		}
		if err := rows.Err(); err != nil && !errors.Is(err, context.Canceled) {
			r.problem("final read of %s: %v", m.Table, err)
		}
		rows.Close()
		readDone := time.Now()
		for _, k := range r.keys {
			if k.table == m.Table && k.ops > 0 {
				g, ok := got[k.id]
				r.hist.Read(r.finalReader(), k.key(), g, ok, readAt, readDone)
			}
		}
		for i := range r.s.seedRows {
			want := value{name: fmt.Sprintf("seeded %d", i), qty: int64(i % 50), cents: seedPrice(i) * 100}
			s.SeedsChecked++
			if g, ok := got[seedID(i)]; !ok || g != want {
				s.LostWrites++
				r.problem("lost write: %s %s reads %v from price_cents, seeded as %v", m.Table, seedID(i), g, want)
			}
		}
		for _, k := range r.keys {
			if k.table != m.Table || !k.written {
				continue
			}
			g, ok := got[k.id]
			switch {
			case !ok && !k.acked:
				continue // its only write failed and never landed
			case !ok:
				s.LostWrites++
				r.problem("lost write: %s %s is missing, last acknowledged %v", m.Table, k.id, k.want)
			case !k.accept(g):
				s.LostWrites++
				r.problem("lost write: %s %s reads %v from price_cents, last acknowledged %v", m.Table, k.id, g, k.want)
			default:
				if k.acked {
					s.WritesChecked++
				}
			}
		}
	}
}

// plural is n and noun, with an s unless n is 1.
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
