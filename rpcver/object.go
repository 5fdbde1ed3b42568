package rpcver

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/services"
)

// objectMagic opens every stored object. Its low three bits are wire type
// 7, which no protobuf message can start with, so tandem's bytes are never
// mistaken for a bare message and the other way round.
const objectMagic = 0x7f

// Objects stores messages of type T with the version they were written at
// (Shaken Fist's versioned objects). Reading upgrades older bytes in memory;
// writing uses the version every instance reads: min(the API's current
// version, the cap of the reader API). Older bytes are rewritten in a newer
// version only once the registry proves no reader left would fail to read
// it; with no reader registered there is no proof, and the old bytes stay.
//
// The proof is only as good as the registry's view: every process that
// reads these objects must register the reader API (by default the API
// itself, which its servers register) with the version it reads, for
// instance by adding Registration to its instance's APIs.
type Objects[T proto.Message] struct {
	api    *API
	caps   CapSource
	mi     *msgInfo
	reader string
}

type objectsConfig struct {
	reader string
}

// NewObjects returns the store codec of T, whose history is api's (add T
// with WithMessages when no method uses it). caps is the cluster's cap
// source, normally the same *services.Cache the clients use; nil declares
// that every instance runs this build, so older bytes are always rewritten.
func NewObjects[T proto.Message](api *API, caps CapSource, opts ...Option) (*Objects[T], error) {
	cfg := objectsConfig{reader: api.name}
	if err := applyOptions("NewObjects", &cfg, opts, func(o Option) func(*objectsConfig) { return o.objects }); err != nil {
		return nil, err
	}
	var zero T
	md := zero.ProtoReflect().Descriptor()
	mi := api.msgs[md.FullName()]
	if mi == nil {
		return nil, &DefinitionError{API: api.name, Where: string(md.FullName()), Reason: "not part of the API; add it with rpcver.WithMessages"}
	}
	if cfg.reader == "" {
		return nil, &DefinitionError{API: api.name, Where: "WithReaderAPI", Reason: "the reader API name must not be empty"}
	}
	return &Objects[T]{api: api, caps: caps, mi: mi, reader: cfg.reader}, nil
}

// ReaderAPI is the API whose cap gates writes: the API's own name unless
// WithReaderAPI named another.
func (o *Objects[T]) ReaderAPI() string { return o.reader }

// Registration is the entry a process reading these objects adds to its
// registered instance's APIs, so the cap counts the version it reads.
func (o *Objects[T]) Registration() services.API {
	return services.API{Name: o.reader, Current: o.api.current, Oldest: o.api.oldest}
}

// WriteVersion is the version new objects are written at: min(the API's
// current version, the reader API's cap). With no reader registered it is
// the current version: a new object has no older bytes to keep.
func (o *Objects[T]) WriteVersion() Version {
	if v, ok := o.provenVersion(); ok {
		return v
	}
	return o.api.current
}

// provenVersion is the newest version every registered reader reads, and
// whether the registry proves it: a cap of the reader API in this major.
// Without caps every instance runs this build.
func (o *Objects[T]) provenVersion() (Version, bool) {
	cur := o.api.current
	if o.caps == nil {
		return cur, true
	}
	c, ok := o.caps.Cap(o.reader)
	if !ok || c.Major != cur.Major {
		return Version{}, false
	}
	if c.Less(cur) {
		return c, true
	}
	return cur, true
}

// Marshal encodes m at WriteVersion, backporting a copy when needed; a set
// field that cannot be backported is an error and nothing is encoded.
func (o *Objects[T]) Marshal(m T) ([]byte, error) {
	b, _, err := o.marshalAt(m, o.WriteVersion())
	return b, err
}

func (o *Objects[T]) marshalAt(m T, v Version) ([]byte, Version, error) {
	msg := proto.Message(m)
	if v != o.api.current && o.api.needsBackport(m.ProtoReflect(), o.mi, v) {
		msg = proto.Clone(m)
		if err := o.api.backport(msg.ProtoReflect(), o.mi, v, true); err != nil {
			return nil, v, fmt.Errorf("rpcver: store %s at %s: %w", o.mi.desc.FullName(), v, err)
		}
	}
	head := make([]byte, 1, 1+2*binary.MaxVarintLen64+proto.Size(msg))
	head[0] = objectMagic
	head = binary.AppendUvarint(head, uint64(v.Major))
	head = binary.AppendUvarint(head, uint64(v.Minor))
	b, err := proto.MarshalOptions{}.MarshalAppend(head, msg)
	if err != nil {
		return nil, v, fmt.Errorf("rpcver: store %s: %w", o.mi.desc.FullName(), err)
	}
	return b, v, nil
}

// Unmarshal decodes stored bytes and upgrades them in memory to the API's
// current version. It returns the version the bytes were written at.
func (o *Objects[T]) Unmarshal(data []byte) (T, Version, error) {
	var zero T
	v, payload, err := o.header(data)
	if err != nil {
		return zero, v, err
	}
	m := zero.ProtoReflect().Type().New().Interface().(T)
	if err := proto.Unmarshal(payload, m); err != nil {
		return zero, v, &ObjectError{Message: string(o.mi.desc.FullName()), Reason: "payload: " + err.Error()}
	}
	if v.Less(o.api.current) {
		if err := o.api.upgrade(m.ProtoReflect(), o.mi, v); err != nil {
			return zero, v, fmt.Errorf("rpcver: load %s from %s: %w", o.mi.desc.FullName(), v, err)
		}
	}
	return m, v, nil
}

func (o *Objects[T]) header(data []byte) (Version, []byte, error) {
	name := string(o.mi.desc.FullName())
	if len(data) == 0 || data[0] != objectMagic {
		return Version{}, nil, &ObjectError{Message: name, Reason: "no tandem version header: these bytes were not written by rpcver.Objects"}
	}
	major, n := binary.Uvarint(data[1:])
	if n <= 0 || major > 1<<20 {
		return Version{}, nil, &ObjectError{Message: name, Reason: "corrupt version header"}
	}
	minor, m := binary.Uvarint(data[1+n:])
	if m <= 0 || minor > 1<<20 {
		return Version{}, nil, &ObjectError{Message: name, Reason: "corrupt version header"}
	}
	v := Version{Major: int(major), Minor: int(minor)}
	if v.Major != o.api.current.Major {
		return v, nil, &ObjectError{Message: name, Reason: fmt.Sprintf("written at %s, and this build reads major %d only", v, o.api.current.Major)}
	}
	return v, data[1+n+m:], nil
}

// Loaded is an object read back.
type Loaded[T proto.Message] struct {
	Msg    T       // upgraded to the API's current version
	Stored Version // the version the bytes were written at
	// Rewrite holds the object encoded at the version every registered
	// reader reads, when that is newer than Stored, so the caller may write
	// it back; nil when the stored bytes must stay (a reader could not read
	// a newer version, or no reader is registered to prove it) or are
	// already current.
	Rewrite []byte
	// Written reports that Get or WriteBack wrote Rewrite back.
	Written bool
	read    []byte // the bytes decoded, for the compare-and-swap
}

// Load decodes data and decides whether it may be written back upgraded.
func (o *Objects[T]) Load(data []byte) (Loaded[T], error) {
	m, stored, err := o.Unmarshal(data)
	if err != nil {
		return Loaded[T]{}, err
	}
	l := Loaded[T]{Msg: m, Stored: stored, read: data}
	if w, ok := o.provenVersion(); ok && stored.Less(w) {
		// A value that cannot go back to w (an upgrade step filled a field
		// the floor cannot hold) leaves the old bytes, which still read.
		if b, _, err := o.marshalAt(m, w); err == nil {
			l.Rewrite = b
		}
	}
	return l, nil
}

// Table names where objects live: a key column and a bytes column.
type Table struct {
	Name string
	Key  string
	Data string
}

// Get reads the object under key from t, upgrades it, and writes it back
// upgraded when the reader API's cap proves every reader reads it, only if the row still holds the bytes that
// were read (a concurrent writer wins; its bytes are newer).
func (o *Objects[T]) Get(ctx context.Context, db *dialect.DB, t Table, key any) (Loaded[T], error) {
	name, kc, dc, err := quoteTable(sqldialect.Of(db), t)
	if err != nil {
		return Loaded[T]{}, fmt.Errorf("rpcver: get %s: %w", o.mi.desc.FullName(), err)
	}
	var data []byte
	err = db.QueryRowxContext(ctx, db.Rebind(`SELECT `+dc+` FROM `+name+` WHERE `+kc+` = ?`), key).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return Loaded[T]{}, fmt.Errorf("rpcver: get %s %v from %s: %w", o.mi.desc.FullName(), key, t.Name, err)
	}
	if err != nil {
		return Loaded[T]{}, fmt.Errorf("rpcver: get %s %v from %s: %w", o.mi.desc.FullName(), key, t.Name, err)
	}
	l, err := o.Load(data)
	if err != nil {
		return l, err
	}
	if err := o.WriteBack(ctx, db, t, key, &l); err != nil {
		return l, err
	}
	return l, nil
}

// WriteBack writes l.Rewrite under key in t if the row still holds the bytes
// l was loaded from, and sets l.Written. It does nothing when l has no
// rewrite. Callers that read rows themselves use Load then WriteBack.
func (o *Objects[T]) WriteBack(ctx context.Context, db *dialect.DB, t Table, key any, l *Loaded[T]) error {
	if l.Rewrite == nil {
		return nil
	}
	name, kc, dc, err := quoteTable(sqldialect.Of(db), t)
	if err != nil {
		return fmt.Errorf("rpcver: write back %s: %w", o.mi.desc.FullName(), err)
	}
	res, err := db.ExecContext(ctx, db.Rebind(`UPDATE `+name+` SET `+dc+` = ? WHERE `+kc+` = ? AND `+dc+` = ?`), l.Rewrite, key, l.read)
	if err != nil {
		return fmt.Errorf("rpcver: write back %s %v to %s: %w", o.mi.desc.FullName(), key, t.Name, err)
	}
	n, err := res.RowsAffected()
	l.Written = err == nil && n == 1
	return nil
}

func quoteTable(d sqldialect.Dialect, t Table) (name, key, data string, err error) {
	if name, err = d.Quote(t.Name); err != nil {
		return
	}
	if key, err = d.Quote(t.Key); err != nil {
		return
	}
	data, err = d.Quote(t.Data)
	return
}
