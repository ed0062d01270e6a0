// corpus: safe
// covers: atomic-typed, flag-publication, int-keys, write, read
// The writer fills m and then sets an atomic.Bool; the reader spins on the flag before reading m.

package main

import (
	"fmt"
	"runtime"
	"sync/atomic"
)

func main() {
	m := map[int]int{}
	var ready atomic.Bool
	done := make(chan int)
	go func() {
		for !ready.Load() {
			runtime.Gosched()
		}
		done <- m[1] + m[2]
	}()
	m[1] = 10
	m[2] = 20
	ready.Store(true)
	fmt.Println(<-done)
}
