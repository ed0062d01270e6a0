// corpus: safe
// covers: finalizer, string-keys, read, write
// The runtime's finalizer goroutine already runs (a first finalizer started it); main then writes a map and drops an object whose finalizer reads it: the object's collection orders the two (the runtime only queues a finalizer once the program can no longer reach its object).

package main

import (
	"fmt"
	"runtime"
	"time"
)

type resource struct{ name string }

func main() {
	started := make(chan struct{})
	first := &resource{"first"}
	runtime.SetFinalizer(first, func(*resource) { close(started) })
	first = nil
	collectUntil(started)

	closed := map[string]bool{}
	closed["setup"] = true
	seen := make(chan bool, 1)
	second := &resource{"second"}
	runtime.SetFinalizer(second, func(*resource) { seen <- closed["setup"] })
	second = nil
	done := make(chan struct{})
	go func() {
		fmt.Println("finalizer saw setup:", <-seen)
		close(done)
	}()
	collectUntil(done)
}

// collectUntil runs the collector until done is closed.
func collectUntil(done chan struct{}) {
	for i := 0; i < 1000; i++ {
		runtime.GC()
		select {
		case <-done:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	panic("no finalizer ran within 10 s")
}
