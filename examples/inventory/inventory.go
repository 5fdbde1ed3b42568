package inventory

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"

	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
	"github.com/tandem-go/tandem/rpcver"
)

// The API's methods, typed.
var (
	GetItem    = rpcver.NewMethod[*pb.GetItemRequest, *pb.GetItemResponse]("GetItem")
	PutItem    = rpcver.NewMethod[*pb.PutItemRequest, *pb.PutItemResponse]("PutItem")
	RenameItem = rpcver.NewMethod[*pb.RenameItemRequest, *pb.RenameItemResponse]("RenameItem")
)

// TagLabelPrefix marks a tag stored as a label for 1.1 peers.
const TagLabelPrefix = "tag/"

// Steps are the backport and upgrade steps between the API's versions.
func Steps() []rpcver.Option {
	return []rpcver.Option{
		// 1.1 -> 1.0: whole units only.
		rpcver.Backport("price_cents", func(it *pb.Item, to rpcver.Version) error {
			if it.PriceCents%100 != 0 {
				return fmt.Errorf("price %d cents is not a whole number of units, and 1.0 has whole units only", it.PriceCents)
			}
			it.Price = it.PriceCents / 100
			return nil
		}),
		// 1.0 -> 1.1: derive cents from units.
		rpcver.Upgrade("1.1", func(it *pb.Item) error {
			if it.PriceCents == 0 && it.Price != 0 {
				it.PriceCents = it.Price * 100
			}
			return nil
		}),
		// 1.2 -> 1.1: whole quantities only.
		rpcver.Backport("quantity_milli", func(it *pb.Item, to rpcver.Version) error {
			if it.QuantityMilli%1000 != 0 {
				return fmt.Errorf("quantity %d/1000 is not whole, and 1.1 has whole quantities only", it.QuantityMilli)
			}
			it.Quantity = it.QuantityMilli / 1000
			return nil
		}),
		// 1.2 -> 1.1: each tag becomes a label "tag/<name>".
		rpcver.Backport("tags", func(it *pb.Item, to rpcver.Version) error {
			if it.Labels == nil {
				it.Labels = make(map[string]string, len(it.Tags))
			}
			for _, t := range it.Tags {
				it.Labels[TagLabelPrefix+t] = ""
			}
			return nil
		}),
		// 1.1 -> 1.2: labels "tag/<name>" become tags again.
		rpcver.Upgrade("1.2", func(it *pb.Item) error {
			if it.QuantityMilli == 0 && it.Quantity != 0 {
				it.QuantityMilli = it.Quantity * 1000
			}
			if len(it.Labels) == 0 {
				return nil
			}
			for _, k := range slices.Sorted(maps.Keys(it.Labels)) {
				if name, ok := strings.CutPrefix(k, TagLabelPrefix); ok {
					it.Tags = append(it.Tags, name)
					delete(it.Labels, k)
				}
			}
			return nil
		}),
	}
}

// NewAPI builds the inventory API with its steps; opts come after them, so
// rpcver.WithCurrent can make an older build for tests and demos.
func NewAPI(opts ...rpcver.Option) (*rpcver.API, error) {
	return rpcver.NewAPI(pb.File_inventory_v1_inventory_proto.Services().ByName("Inventory"), append(Steps(), opts...)...)
}

// API is the inventory API at the version the .proto declares.
var API = func() *rpcver.API {
	a, err := NewAPI()
	if err != nil {
		panic(err)
	}
	return a
}()

// Sentinel errors of a Store.
var (
	ErrNotFound = errors.New("item not found")
	ErrExists   = errors.New("item already exists")
)

// Store keeps items. Items handed in and out are the caller's to keep.
type Store interface {
	Get(ctx context.Context, id string) (*pb.Item, error)
	// Put stores item; with createOnly it fails with ErrExists instead of
	// overwriting.
	Put(ctx context.Context, item *pb.Item, createOnly bool) error
	Rename(ctx context.Context, id, name string) (*pb.Item, error)
}

// Handle registers the inventory handlers over store on s. Methods newer
// than s's API version are left out, as an older build would.
func Handle(s *rpcver.Server, store Store) error {
	return errors.Join(
		rpcver.Handle(s, GetItem, func(ctx context.Context, r *pb.GetItemRequest) (*pb.GetItemResponse, error) {
			it, err := store.Get(ctx, r.Id)
			if err != nil {
				return nil, status(err)
			}
			return &pb.GetItemResponse{Item: it}, nil
		}),
		rpcver.Handle(s, PutItem, func(ctx context.Context, r *pb.PutItemRequest) (*pb.PutItemResponse, error) {
			if r.Item.GetId() == "" {
				return nil, &rpcver.StatusError{Code: rpcver.CodeBadRequest, Message: "item.id is required"}
			}
			if err := store.Put(ctx, r.Item, r.CreateOnly); err != nil {
				return nil, status(err)
			}
			return &pb.PutItemResponse{Item: r.Item}, nil
		}),
		rpcver.Handle(s, RenameItem, func(ctx context.Context, r *pb.RenameItemRequest) (*pb.RenameItemResponse, error) {
			it, err := store.Rename(ctx, r.Id, r.Name)
			if err != nil {
				return nil, status(err)
			}
			return &pb.RenameItemResponse{Item: it}, nil
		}),
	)
}

func status(err error) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return &rpcver.StatusError{Code: rpcver.CodeNotFound, Message: err.Error(), Err: err}
	case errors.Is(err, ErrExists):
		return &rpcver.StatusError{Code: rpcver.CodeConflict, Message: err.Error(), Err: err}
	}
	return err
}

// MemStore is a Store in memory.
type MemStore struct {
	mu    sync.Mutex
	items map[string]*pb.Item
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{items: map[string]*pb.Item{}} }

func (m *MemStore) Get(_ context.Context, id string) (*pb.Item, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.items[id]
	if !ok {
		return nil, fmt.Errorf("get %q: %w", id, ErrNotFound)
	}
	return proto.Clone(it).(*pb.Item), nil
}

func (m *MemStore) Put(_ context.Context, item *pb.Item, createOnly bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.items[item.Id]; ok && createOnly {
		return fmt.Errorf("put %q: %w", item.Id, ErrExists)
	}
	m.items[item.Id] = proto.Clone(item).(*pb.Item)
	return nil
}

func (m *MemStore) Rename(_ context.Context, id, name string) (*pb.Item, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.items[id]
	if !ok {
		return nil, fmt.Errorf("rename %q: %w", id, ErrNotFound)
	}
	it.Name = name
	return proto.Clone(it).(*pb.Item), nil
}
