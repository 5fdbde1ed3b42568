package stacks

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/rpcver"

	pb "example.com/stacks/stackspb"
)

// The API's methods, typed.
var (
	GetResource    = rpcver.NewMethod[*pb.GetResourceRequest, *pb.GetResourceResponse]("GetResource")
	CreateResource = rpcver.NewMethod[*pb.CreateResourceRequest, *pb.CreateResourceResponse]("CreateResource")
	UpdateResource = rpcver.NewMethod[*pb.UpdateResourceRequest, *pb.UpdateResourceResponse]("UpdateResource")
)

// NewAPI builds the stacks API from the .proto; rpcver.WithCurrent makes an
// older build.
func NewAPI(opts ...rpcver.Option) (*rpcver.API, error) {
	return rpcver.NewAPI(pb.File_stacks_v1_stacks_proto.Services().ByName("Stacks"), opts...)
}

// CreateTableSQL creates the resource table as release 1 knows it, with
// the properties inline.
const CreateTableSQL = `CREATE TABLE resource (id VARCHAR(64) NOT NULL PRIMARY KEY, name VARCHAR(200) NOT NULL, properties TEXT)`

// PropertiesMove moves resource.properties into a table of its own,
// resource_data(resource_id, data), which tandem creates at write-both:
// release 2 writes both, 3 reads the new table, 4 writes it only and may
// contract.
var PropertiesMove = move.Move{
	Name: "resource_data", Table: "resource", Key: []string{"id"}, Old: "properties",
	New: move.Target{Table: "resource_data", Column: "data", Key: []string{"resource_id"},
		Type: move.ColumnType{SQL: "TEXT"}, KeyType: []move.ColumnType{{SQL: "VARCHAR(64)"}}},
	Releases:    move.Releases{WriteBoth: 2, ReadNew: 3, WriteNew: 4, Contracted: 4},
	Description: "resource.properties moves to resource_data.data",
}

// ErrNotFound and ErrExists are the store's sentinel errors.
var (
	ErrNotFound = errors.New("resource not found")
	ErrExists   = errors.New("resource already exists")
)

// Phases gives the phase an operation acts on (a *dualwrite.Tracker):
// Begin for a read, which a write freeze never refuses, and BeginWrite for
// an operation that writes, which returns a *dualwrite.FrozenError and
// begins nothing while the operator has frozen writes on the move (tandem
// freeze). Only an instance whose every write begins with BeginWrite may
// report the tracker's FreezeAck.
type Phases interface {
	Begin(move string) (move.Phase, func())
	BeginWrite(move string) (move.Phase, func(), error)
}

// Store keeps resources in the application's own statements, with the
// moved properties routed by SQL fragments: no query of tandem's own.
type Store struct {
	db     *dialect.DB
	r      *dualwrite.Router
	phases Phases
}

// NewStore returns the store over db, acting on the phase phases gives.
func NewStore(db *dialect.DB, phases Phases) (*Store, error) {
	r, err := dualwrite.NewRouter(PropertiesMove, db.Engine())
	if err != nil {
		return nil, err
	}
	return &Store{db: db, r: r, phases: phases}, nil
}

// Get reads a resource in one SELECT: the fragment joins resource_data
// once the phase reads it.
func (s *Store) Get(ctx context.Context, id string) (*pb.Resource, error) {
	p, done := s.phases.Begin(PropertiesMove.Name)
	defer done()
	sel, err := s.r.Select(p, "")
	if err != nil {
		return nil, err
	}
	a := s.r.Args()
	stmt := `SELECT resource.name, ` + sel.Expr + ` FROM resource` + sel.Join + ` WHERE resource.id = ` + a.Bind(id)
	res := &pb.Resource{Id: id}
	var props sql.Null[string]
	err = s.db.QueryRowContext(ctx, stmt, a.Values()...).Scan(&res.Name, dualwrite.Into(sel, &props))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("get %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("stacks: get %q at %s: %w", id, p, err)
	}
	res.Properties = props.V
	return res, nil
}

// Create inserts a resource: the insert case of a cross-table move. The
// source row carries the old column while the phase writes it, and Finish
// writes the resource_data row in the same transaction once the phase
// writes the new table.
func (s *Store) Create(ctx context.Context, res *pb.Resource) error {
	return s.write(ctx, func(p move.Phase, tx *sql.Tx) error {
		var n int
		a := s.r.Args()
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM resource WHERE id = `+a.Bind(res.Id), a.Values()...).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("create %q: %w", res.Id, ErrExists)
		}
		ins, err := s.r.Insert(p, res.Properties)
		if err != nil {
			return err
		}
		a = s.r.Args()
		stmt := `INSERT INTO resource (id, name` + ins.Columns() + `) VALUES (` + a.Bind(res.Id) + `, ` + a.Bind(res.Name) + ins.Values(a) + `)`
		if _, err := tx.ExecContext(ctx, stmt, a.Values()...); err != nil {
			return err
		}
		return ins.Finish(ctx, tx, res.Id)
	})
}

// Update changes a resource's name and properties in one UPDATE, plus
// Finish for the resource_data row when the phase writes it.
func (s *Store) Update(ctx context.Context, res *pb.Resource) error {
	return s.write(ctx, func(p move.Phase, tx *sql.Tx) error {
		set, err := s.r.Set(p, res.Properties)
		if err != nil {
			return err
		}
		a := s.r.Args()
		stmt := `UPDATE resource SET name = ` + a.Bind(res.Name)
		if !set.Empty() {
			stmt += `, ` + set.Clauses(a)
		}
		stmt += ` WHERE id = ` + a.Bind(res.Id)
		out, err := tx.ExecContext(ctx, stmt, a.Values()...)
		if err != nil {
			return err
		}
		// Rows matched, on every engine (dialect.Open makes MySQL count them).
		if n, err := out.RowsAffected(); err != nil || n == 0 {
			return errors.Join(fmt.Errorf("update %q: %w", res.Id, ErrNotFound), err)
		}
		return set.Finish(ctx, tx, res.Id)
	})
}

// write runs fn in a transaction at the phase the tracker gives, and runs
// it again from the start (up to 4 times, with a fresh phase) when the
// engine rolled it back on a deadlock or serialization failure
// (dialect.IsRetryable): concurrent writers, and a backfill beside them,
// meet those on every engine. Nothing else is retried: a write refused by
// a write freeze returns the *dualwrite.FrozenError as it is, having begun
// nothing (retry it after the thaw).
func (s *Store) write(ctx context.Context, fn func(move.Phase, *sql.Tx) error) error {
	var err error
	var p move.Phase
	for attempt := 1; attempt <= 4; attempt++ {
		var frozen bool
		err = func() error {
			var done func()
			var err error
			if p, done, err = s.phases.BeginWrite(PropertiesMove.Name); err != nil {
				frozen = true
				return err
			}
			defer done() // after the commit or rollback
			return s.txOnce(ctx, func(tx *sql.Tx) error { return fn(p, tx) })
		}()
		if frozen {
			return err
		}
		if err == nil || !dialect.IsRetryable(err) {
			break
		}
		time.Sleep(time.Duration(attempt) * 5 * time.Millisecond)
	}
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrExists) {
		return err
	}
	return fmt.Errorf("stacks: at %s: %w", p, err)
}

func (s *Store) txOnce(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Handle registers the handlers over store on srv.
func Handle(srv *rpcver.Server, store *Store) error {
	return errors.Join(
		rpcver.Handle(srv, GetResource, func(ctx context.Context, r *pb.GetResourceRequest) (*pb.GetResourceResponse, error) {
			res, err := store.Get(ctx, r.Id)
			if err != nil {
				return nil, status(err)
			}
			return &pb.GetResourceResponse{Resource: res}, nil
		}),
		rpcver.Handle(srv, CreateResource, func(ctx context.Context, r *pb.CreateResourceRequest) (*pb.CreateResourceResponse, error) {
			if err := store.Create(ctx, r.Resource); err != nil {
				return nil, status(err)
			}
			return &pb.CreateResourceResponse{Resource: r.Resource}, nil
		}),
		rpcver.Handle(srv, UpdateResource, func(ctx context.Context, r *pb.UpdateResourceRequest) (*pb.UpdateResourceResponse, error) {
			if err := store.Update(ctx, r.Resource); err != nil {
				return nil, status(err)
			}
			return &pb.UpdateResourceResponse{Resource: r.Resource}, nil
		}),
	)
}

// status maps the store's errors to the API's codes. A write freeze's
// *dualwrite.FrozenError goes back as it is: rpcver answers it with
// rpcver.CodeFrozen (423) and the freeze's reason, and the caller's error
// matches dualwrite.ErrFrozen, which a StatusError of our own would lose.
func status(err error) error {
	switch {
	case errors.Is(err, dualwrite.ErrFrozen):
		return err
	case errors.Is(err, ErrNotFound):
		return &rpcver.StatusError{Code: rpcver.CodeNotFound, Message: err.Error(), Err: err}
	case errors.Is(err, ErrExists):
		return &rpcver.StatusError{Code: rpcver.CodeConflict, Message: err.Error(), Err: err}
	}
	return err
}
