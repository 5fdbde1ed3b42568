// Package stacks is a service that adopts tandem from a module of its own,
// the way a third-party application does, using only tandem's public
// packages: its own .proto with tandem's version options, a move of its
// resources' properties into another table (resource.properties to
// resource_data.data), routed by SQL fragments inside its own statements,
// and processes that register, report their phases and leave in order.
//
// The generated code in stackspb was made with protoc 3.21 and
// protoc-gen-go v1.36.12 (go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12;
// protoc from the protobuf-compiler package). tandem/options.proto is found
// in tandem's module, wherever the go command keeps it: the -I below asks
// go list for that directory, so the same line works from any module that
// requires tandem.
//
//	go generate .
package stacks

//go:generate sh -c "protoc -I proto -I \"$(go list -m -f '{{.Dir}}' github.com/tandem-go/tandem)/proto\" --go_out=. --go_opt=module=example.com/stacks proto/stacks/v1/stacks.proto"
