// corpus: safe
// covers: atomic-raw, flag-publication, string-keys, write, range
// unobservable: atomic.LoadInt32 compiles to a plain load, indistinguishable from any other read
// The writer fills m and then calls atomic.StoreInt32; the reader loops on atomic.LoadInt32 before ranging over m.

package main

import (
	"fmt"
	"runtime"
	"sync/atomic"
)

func main() {
	m := map[string]int{}
	var ready int32
	done := make(chan int)
	go func() {
		for atomic.LoadInt32(&ready) == 0 {
			runtime.Gosched()
		}
		sum := 0
		for _, v := range m {
			sum += v
		}
		done <- sum
	}()
	m["a"] = 1
	m["b"] = 2
	atomic.StoreInt32(&ready, 1)
	fmt.Println(<-done)
}
