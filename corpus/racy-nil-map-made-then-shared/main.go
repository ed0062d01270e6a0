// corpus: racy
// covers: nil-map, string-keys, write, delete, atomic-typed
// The twin of safe-nil-maps-of-separate-structs: one request shared by two goroutines; one creates its map lazily, publishes it and writes it, the other deletes from it once it is no longer nil. The publication orders the map's creation, not the write after it.

package main

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

type request struct {
	tags atomic.Pointer[map[string]string]
}

func (r *request) tag(key, value string) {
	if r.tags.Load() == nil {
		tags := map[string]string{}
		r.tags.Store(&tags)
	}
	(*r.tags.Load())[key] = value // race
}

func (r *request) untag(key string) {
	delete(*r.tags.Load(), key) // race
}

func main() {
	r := &request{}
	// Both goroutines stay alive until both accesses ran: -race drops a report whose other
	// goroutine has exited and whose stack it can no longer restore.
	var accessed sync.WaitGroup
	release := make(chan struct{})
	accessed.Add(2)
	go func() {
		r.tag("k", "v")
		accessed.Done()
		<-release
	}()
	go func() {
		for r.tags.Load() == nil {
			runtime.Gosched()
		}
		// Nothing orders the delete after the write; the pause only makes it the usual order,
		// in which -race reports every time (a delete that runs first is missed now and then).
		time.Sleep(10 * time.Millisecond)
		r.untag("k")
		accessed.Done()
		<-release
	}()
	accessed.Wait()
	close(release)
	fmt.Println(len(*r.tags.Load()))
}
