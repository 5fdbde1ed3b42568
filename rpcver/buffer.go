package rpcver

import (
	"sync"

	"google.golang.org/protobuf/proto"
)

// Encoded messages are copied into the connection's buffer by publish, so
// their bytes can be reused at once; pooling them keeps a call's garbage,
// and so GC pauses on the hot path, down.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// marshal encodes m into a pooled buffer; call release when the bytes have
// been published.
func marshal(m proto.Message) ([]byte, *[]byte, error) {
	bp := bufPool.Get().(*[]byte)
	b, err := proto.MarshalOptions{}.MarshalAppend((*bp)[:0], m)
	if err != nil {
		release(bp)
		return nil, nil, err
	}
	*bp = b
	return b, bp, nil
}

func release(bp *[]byte) {
	if cap(*bp) > 64<<10 {
		return // let rare large messages go rather than pin them
	}
	bufPool.Put(bp)
}

// unmarshalNew decodes into a message just allocated, so the reset a plain
// proto.Unmarshal starts with is skipped; the result is the same.
func unmarshalNew(b []byte, m proto.Message) error {
	return proto.UnmarshalOptions{Merge: true}.Unmarshal(b, m)
}
