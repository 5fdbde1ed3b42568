package services

import (
	"encoding/json"
	"strings"
	"time"
)

// Every cache decodes every notice of its cluster: at fleet scale that is
// a thousand caches times a hundred changes a second, and encoding/json
// spends most of a cache's time per notice (reflection, and some thirty
// allocations for one Change). decodeChange reads the notices a Registry
// writes directly, and reuses what the cache already holds for the
// instance (its id, service, host, state, APIs, phases and metadata,
// when they are unchanged) instead of allocating copies. Anything it does
// not read exactly as encoding/json would (an escape in a key, a null, a
// key twice, a key in other case, a number with a fraction, a value of
// another type, invalid JSON) is handed to encoding/json whole, so the
// result is always what json.Unmarshal returns (FuzzDecodeChange checks
// it).

// decodeChange decodes one notice; held, when not nil, is the cache's
// state, whose instances lend their unchanged parts.
func decodeChange(b []byte, held *cacheState) (Change, error) {
	d := noticeDecoder{b: b, held: held}
	if ch, ok := d.change(); ok {
		return ch, nil
	}
	var ch Change
	err := json.Unmarshal(b, &ch)
	return ch, err
}

type noticeDecoder struct {
	b    []byte
	i    int
	held *cacheState
	like *Instance // what the cache holds for the notice's instance
}

// hint looks up what the cache holds for id, deleted or not.
func (s *cacheState) hint(id []byte) *Instance {
	if s == nil {
		return nil
	}
	if in := s.byID[string(id)]; in != nil {
		return in
	}
	return s.gone[string(id)].last
}

func (d *noticeDecoder) ws() {
	// One comparison for the usual byte, which is no white space.
	for d.i < len(d.b) && d.b[d.i] <= ' ' {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *noticeDecoder) peek() byte {
	d.ws()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

func (d *noticeDecoder) eat(c byte) bool {
	if d.peek() == c {
		d.i++
		return true
	}
	return false
}

// object reads an object whose keys are plain ASCII, calling field with
// the decoder at each value; it fails on anything else.
func (d *noticeDecoder) object(field func(key []byte) bool) bool {
	if !d.eat('{') {
		return false
	}
	if d.eat('}') {
		return true
	}
	for {
		key, plain, ok := d.rawString()
		if !ok || !plain || !d.eat(':') || !field(key) {
			return false
		}
		if d.eat(',') {
			continue
		}
		return d.eat('}')
	}
}

// once marks bit in seen, failing for a key given twice (encoding/json
// would merge or overwrite; the fallback does exactly that).
func once(seen *uint32, bit uint32) bool {
	if *seen&bit != 0 {
		return false
	}
	*seen |= bit
	return true
}

// unknown skips the value of a key that is not a field, unless encoding/json
// would take it for one of names (it matches keys without regard to case).
func (d *noticeDecoder) unknown(key []byte, names ...string) bool {
	for _, n := range names {
		if strings.EqualFold(string(key), n) {
			return false
		}
	}
	return d.skip(0)
}

var changeFields = []string{"event", "instance", "at", "release", "state", "phases", "finalized", "revision", "record"}

func (d *noticeDecoder) change() (Change, bool) {
	var ch Change
	var seen uint32
	ok := d.object(func(key []byte) bool {
		switch string(key) {
		case "event":
			var ok bool
			ch.Event, ok = d.known(eventNames)
			return once(&seen, 1<<0) && ok
		case "instance":
			raw, plain, ok := d.rawString()
			if !ok || !once(&seen, 1<<1) {
				return false
			}
			if d.like == nil && plain {
				d.like = d.held.hint(raw)
			}
			ch.Instance, ok = d.unquote(raw, plain, likeOf(d.like).ID)
			return ok
		case "at":
			return once(&seen, 1<<2) && d.time(&ch.At)
		case "release":
			var ok bool
			ch.Release, ok = d.int64()
			return once(&seen, 1<<3) && ok
		case "state":
			s, ok := d.known(stateNames)
			ch.State = State(s)
			return once(&seen, 1<<4) && ok
		case "phases":
			var ok bool
			ch.Phases, ok = d.stringMap(likeOf(d.like).Phases)
			return once(&seen, 1<<5) && ok
		case "finalized":
			var ok bool
			ch.Finalized, ok = d.int64()
			return once(&seen, 1<<6) && ok
		case "revision":
			var ok bool
			ch.Revision, ok = d.int64()
			return once(&seen, 1<<7) && ok
		case "record":
			if !once(&seen, 1<<8) {
				return false
			}
			var ok bool
			ch.Record, ok = d.instance(&ch)
			return ok
		}
		return d.unknown(key, changeFields...)
	})
	if !ok {
		return Change{}, false
	}
	d.ws()
	return ch, d.i == len(d.b)
}

// noInstance stands for an instance the cache does not hold; nothing
// writes it.
var noInstance Instance

func likeOf(in *Instance) *Instance {
	if in == nil {
		return &noInstance
	}
	return in
}

var instanceFields = []string{"id", "service", "host", "release", "apis", "state", "started_at", "heartbeat_at", "metadata", "phases", "incarnation", "pid", "revision", "freeze"}

// instance reads a notice's record; ch is the notice read so far, whose
// instance id and phases it shares when they are equal.
func (d *noticeDecoder) instance(ch *Change) (*Instance, bool) {
	in := new(Instance)
	var seen uint32
	ok := d.object(func(key []byte) bool {
		switch string(key) {
		case "id":
			raw, plain, ok := d.rawString()
			if !ok || !once(&seen, 1<<0) {
				return false
			}
			if d.like == nil && plain {
				d.like = d.held.hint(raw)
			}
			like := likeOf(d.like).ID
			if ch.Instance != "" {
				like = ch.Instance
			}
			in.ID, ok = d.unquote(raw, plain, like)
			return ok
		case "service":
			var ok bool
			in.Service, ok = d.str(likeOf(d.like).Service)
			return once(&seen, 1<<1) && ok
		case "host":
			var ok bool
			in.Host, ok = d.str(likeOf(d.like).Host)
			return once(&seen, 1<<2) && ok
		case "release":
			var ok bool
			in.Release, ok = d.int64()
			return once(&seen, 1<<3) && ok
		case "apis":
			var ok bool
			in.APIs, ok = d.apis(likeOf(d.like).APIs)
			return once(&seen, 1<<4) && ok
		case "state":
			s, ok := d.known(stateNames)
			in.State = State(s)
			return once(&seen, 1<<5) && ok
		case "started_at":
			return once(&seen, 1<<6) && d.time(&in.StartedAt)
		case "heartbeat_at":
			return once(&seen, 1<<7) && d.time(&in.HeartbeatAt)
		case "metadata":
			var ok bool
			in.Metadata, ok = d.stringMap(likeOf(d.like).Metadata)
			return once(&seen, 1<<8) && ok
		case "phases":
			like := likeOf(d.like).Phases
			if ch.Phases != nil {
				like = ch.Phases
			}
			var ok bool
			in.Phases, ok = d.stringMap(like)
			return once(&seen, 1<<9) && ok
		case "incarnation":
			var ok bool
			in.Incarnation, ok = d.int64()
			return once(&seen, 1<<10) && ok
		case "pid":
			n, ok := d.int64()
			in.PID = int(n)
			return once(&seen, 1<<11) && ok
		case "revision":
			var ok bool
			in.Revision, ok = d.int64()
			return once(&seen, 1<<12) && ok
		case "freeze":
			var ok bool
			in.Freeze, ok = d.int64()
			return once(&seen, 1<<13) && ok
		}
		return d.unknown(key, instanceFields...)
	})
	return in, ok
}

var apiFields = []string{"name", "current", "oldest"}

// apis reads an instance's APIs, returning like's slice when they are the
// same.
func (d *noticeDecoder) apis(like []API) ([]API, bool) {
	if !d.eat('[') {
		return nil, false
	}
	var buf [4]API
	out := buf[:0]
	if !d.eat(']') {
		for {
			var a API
			var seen uint32
			name := ""
			if k := len(out); k < len(like) {
				name = like[k].Name
			}
			ok := d.object(func(key []byte) bool {
				switch string(key) {
				case "name":
					var ok bool
					a.Name, ok = d.str(name)
					return once(&seen, 1<<0) && ok
				case "current":
					return once(&seen, 1<<1) && d.version(&a.Current)
				case "oldest":
					return once(&seen, 1<<2) && d.version(&a.Oldest)
				}
				return d.unknown(key, apiFields...)
			})
			if !ok {
				return nil, false
			}
			out = append(out, a)
			if d.eat(',') {
				continue
			}
			if !d.eat(']') {
				return nil, false
			}
			break
		}
	}
	if len(out) == 0 {
		return []API{}, true // as encoding/json: empty, not nil
	}
	if len(out) == len(like) {
		same := true
		for i := range out {
			same = same && out[i] == like[i]
		}
		if same {
			return like, true
		}
	}
	return append([]API(nil), out...), true
}

// stringMap reads an object of strings, returning like when it holds the
// same.
func (d *noticeDecoder) stringMap(like map[string]string) (map[string]string, bool) {
	type pair struct {
		k, v           []byte
		kPlain, vPlain bool
	}
	if !d.eat('{') {
		return nil, false
	}
	var buf [8]pair
	pairs := buf[:0]
	if !d.eat('}') {
		for {
			var p pair
			var ok bool
			if p.k, p.kPlain, ok = d.rawString(); !ok || !d.eat(':') {
				return nil, false
			}
			if p.v, p.vPlain, ok = d.rawString(); !ok {
				return nil, false
			}
			pairs = append(pairs, p)
			if d.eat(',') {
				continue
			}
			if !d.eat('}') {
				return nil, false
			}
			break
		}
	}
	if like != nil && len(pairs) == len(like) {
		same := true
		for i, p := range pairs {
			if !p.kPlain || !p.vPlain {
				same = false
				break
			}
			v, ok := like[string(p.k)]
			same = ok && v == string(p.v)
			for _, q := range pairs[:i] {
				same = same && string(q.k) != string(p.k) // a key twice is not the same map
			}
			if !same {
				break
			}
		}
		if same {
			return like, true
		}
	}
	m := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, ok := d.unquote(p.k, p.kPlain, "")
		if !ok {
			return nil, false
		}
		v, ok := d.unquote(p.v, p.vPlain, like[k])
		if !ok {
			return nil, false
		}
		m[k] = v // a key twice: the last wins, as in encoding/json
	}
	return m, true
}

var (
	eventNames = []string{"register", "state", "apis", "phases", "freeze", "delete", "finalize", EventWriteFreeze}
	stateNames = []string{string(StateUp), string(StateDraining), string(StateError), string(StateMissing), string(StateDeleted)}
)

// known reads a string, allocating nothing when it is one of names.
func (d *noticeDecoder) known(names []string) (string, bool) {
	raw, plain, ok := d.rawString()
	if !ok {
		return "", false
	}
	if plain {
		for _, n := range names {
			if n == string(raw) {
				return n, true
			}
		}
	}
	return d.unquote(raw, plain, "")
}

// str reads a string, returning like when it is the same.
func (d *noticeDecoder) str(like string) (string, bool) {
	raw, plain, ok := d.rawString()
	if !ok {
		return "", false
	}
	return d.unquote(raw, plain, like)
}

// unquote turns a string's raw contents into a string: like when they
// are the same, a copy when they are plain, and encoding/json's reading of
// the literal when they hold escapes or other than ASCII.
func (d *noticeDecoder) unquote(raw []byte, plain bool, like string) (string, bool) {
	if plain {
		if like == string(raw) {
			return like, true
		}
		return string(raw), true
	}
	var s string
	// raw lies within d.b, between its quotes, and runs to d.b's end.
	start := cap(d.b) - cap(raw) - 1
	if err := json.Unmarshal(d.b[start:start+len(raw)+2], &s); err != nil {
		return "", false
	}
	return s, true
}

// rawString reads a string literal and returns what is between its quotes
// (a slice of d.b), and whether that is plain: ASCII without escapes.
// Escapes are checked; bytes above ASCII are left to encoding/json, which
// takes invalid UTF-8 too.
func (d *noticeDecoder) rawString() ([]byte, bool, bool) {
	if !d.eat('"') {
		return nil, false, false
	}
	start, plain := d.i, true
	b, i := d.b, d.i // locals, kept in registers
	for i < len(b) && plainByte[b[i]] {
		i++ // the common case: the whole string is plain
	}
	d.i = i
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			raw := d.b[start:d.i] // its capacity tells unquote where it starts
			d.i++
			return raw, plain, true
		case c < 0x20:
			return nil, false, false
		case c == '\\':
			plain = false
			if d.i+1 >= len(d.b) {
				return nil, false, false
			}
			switch d.b[d.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				d.i += 2
			case 'u':
				if d.i+6 > len(d.b) {
					return nil, false, false
				}
				for _, h := range d.b[d.i+2 : d.i+6] {
					if !isHex(h) {
						return nil, false, false
					}
				}
				d.i += 6
			default:
				return nil, false, false
			}
		case c >= 0x80:
			plain = false
			d.i++
		default:
			d.i++
		}
	}
	return nil, false, false
}

// plainByte holds the bytes a plain string is made of: printable ASCII
// but the quote and the backslash.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// int64 reads an integer of at most 18 digits (anything else, a fraction
// or an exponent included, goes to encoding/json).
func (d *noticeDecoder) int64() (int64, bool) {
	d.ws()
	neg := d.i < len(d.b) && d.b[d.i] == '-'
	if neg {
		d.i++
	}
	start := d.i
	var n int64
	for d.i < len(d.b) && '0' <= d.b[d.i] && d.b[d.i] <= '9' {
		n = n*10 + int64(d.b[d.i]-'0')
		d.i++
	}
	digits := d.i - start
	if digits == 0 || digits > 18 || (digits > 1 && d.b[start] == '0') {
		return 0, false
	}
	if d.i < len(d.b) {
		switch d.b[d.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	if neg {
		n = -n
	}
	return n, true
}

// time reads a time as time.Time.UnmarshalJSON does: from the literal,
// quotes and all.
func (d *noticeDecoder) time(t *time.Time) bool {
	d.ws()
	start := d.i
	if _, _, ok := d.rawString(); !ok {
		return false
	}
	return t.UnmarshalJSON(d.b[start:d.i]) == nil
}

// version reads a version as Version.UnmarshalText does.
func (d *noticeDecoder) version(v *Version) bool {
	raw, plain, ok := d.rawString()
	if !ok || !plain {
		return false
	}
	if maj, minor, found := strings.Cut(string(raw), "."); found {
		// string(raw) only for the look: Cut and versionPart keep nothing.
		a, ok1 := versionPart(maj)
		b, ok2 := versionPart(minor)
		if ok1 && ok2 {
			*v = Version{Major: a, Minor: b}
			return true
		}
	}
	p, err := ParseVersion(string(raw)) // spaces around it, or an error
	*v = p
	return err == nil
}

// skip reads and checks any value.
func (d *noticeDecoder) skip(depth int) bool {
	if depth > 64 {
		return false
	}
	switch d.peek() {
	case '"':
		_, _, ok := d.rawString()
		return ok
	case '{':
		d.i++
		if d.eat('}') {
			return true
		}
		for {
			if _, _, ok := d.rawString(); !ok || !d.eat(':') || !d.skip(depth+1) {
				return false
			}
			if d.eat(',') {
				continue
			}
			return d.eat('}')
		}
	case '[':
		d.i++
		if d.eat(']') {
			return true
		}
		for {
			if !d.skip(depth + 1) {
				return false
			}
			if d.eat(',') {
				continue
			}
			return d.eat(']')
		}
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	}
	return d.number()
}

func (d *noticeDecoder) literal(s string) bool {
	if len(d.b)-d.i >= len(s) && string(d.b[d.i:d.i+len(s)]) == s {
		d.i += len(s)
		return true
	}
	return false
}

// number checks a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *noticeDecoder) number() bool {
	digits := func() int {
		n := 0
		for d.i < len(d.b) && '0' <= d.b[d.i] && d.b[d.i] <= '9' {
			d.i++
			n++
		}
		return n
	}
	if d.i < len(d.b) && d.b[d.i] == '-' {
		d.i++
	}
	start := d.i
	n := digits()
	if n == 0 || (n > 1 && d.b[start] == '0') {
		return false
	}
	if d.i < len(d.b) && d.b[d.i] == '.' {
		d.i++
		if digits() == 0 {
			return false
		}
	}
	if d.i < len(d.b) && (d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		d.i++
		if d.i < len(d.b) && (d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}
