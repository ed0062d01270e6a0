// corpus: racy
// covers: reflect, chan-buffered, cap-1, string-keys, read-comma-ok, write, write/read
// reflect.Value.Send on a buffered channel does not wait for the receiver, so the sender's later
// read is unordered with the receiver's write.

package main

import (
	"reflect"
	"time"
)

func main() {
	m := map[string]int{}
	ch := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		k, _ := reflect.ValueOf(ch).Recv()
		m[k.String()] = 1 // race
		close(done)
	}()
	reflect.ValueOf(ch).Send(reflect.ValueOf("a")) // returns at once: there is room in the buffer
	time.Sleep(20 * time.Millisecond)
	v, ok := m["a"] // race
	_, _ = v, ok
	<-done
}
