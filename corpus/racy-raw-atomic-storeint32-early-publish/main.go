// corpus: racy
// covers: atomic-raw, flag-publication, string-keys, range, write, write/range
// The writer sets the flag with atomic.StoreInt32 before it finishes writing m; the reader ranges over m after seeing the flag.

package main

import (
	"runtime"
	"sync/atomic"
	"time"
)

func main() {
	m := map[string]int{"a": 1}
	var ready int32
	done := make(chan int)
	go func() {
		for atomic.LoadInt32(&ready) == 0 {
			runtime.Gosched()
		}
		time.Sleep(20 * time.Millisecond)
		sum := 0
		for _, v := range m { // race
			sum += v
		}
		done <- sum
	}()
	atomic.StoreInt32(&ready, 1) // published too early
	m["b"] = 2                   // race
	<-done
}
