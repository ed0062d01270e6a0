// corpus: racy
// covers: atomic-typed, flag-publication, int-keys, read-comma-ok, write, write/read
// The writer bumps an atomic.Int32 state before its last map write, so the reader that saw the state still races.

package main

import (
	"runtime"
	"sync/atomic"
	"time"
)

func main() {
	m := map[int]int{1: 10}
	var state atomic.Int32
	done := make(chan bool)
	go func() {
		for state.Load() == 0 {
			runtime.Gosched()
		}
		time.Sleep(20 * time.Millisecond)
		_, ok := m[2] // race
		done <- ok
	}()
	state.Store(1) // published too early
	m[2] = 20      // race
	<-done
}
