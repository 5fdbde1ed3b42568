// Package inventory is tandem's example API: a small item store whose
// protocol grows over three versions.
//
//   - 1.0: GetItem and PutItem on an Item{id, name, quantity, price}.
//   - 1.1: Item gains price_cents (price in cents, superseding the whole-unit
//     price) and labels.
//   - 1.2: Item gains tags and quantity_milli, PutItemRequest gains
//     create_only, and the RenameItem method arrives.
//
// The history lives in proto/inventory/v1/inventory.proto as tandem options;
// this package adds the backport and upgrade steps between versions and
// handlers that work on any Store, so the same service can run over memory
// or over a database table.
//
// Regenerate inventorypb from the repository root (protoc and protoc-gen-go,
// installed with go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12):
//
//	go generate ./examples/inventory/
package inventory

//go:generate protoc -I ../../proto --go_out=../.. --go_opt=module=github.com/tandem-go/tandem ../../proto/inventory/v1/inventory.proto
