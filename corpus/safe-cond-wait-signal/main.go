// corpus: safe
// covers: cond, cond-signal, mutex, int-keys, write, range, delete
// The producer fills the queue map under the cond's lock and signals; the consumer waits for the flag and drains it under the same lock.

package main

import (
	"fmt"
	"sync"
)

func main() {
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	queue := map[int]string{}
	ready := false
	go func() {
		mu.Lock()
		queue[1] = "a"
		queue[2] = "b"
		ready = true
		mu.Unlock()
		cond.Signal()
	}()
	mu.Lock()
	for !ready {
		cond.Wait()
	}
	n := 0
	for k := range queue {
		delete(queue, k)
		n++
	}
	mu.Unlock()
	fmt.Println(n)
}
