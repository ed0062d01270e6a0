// corpus: racy
// covers: rwmutex, string-keys, range, write, range/write
// A reporter ranges over m without RLock while the writer correctly uses Lock.

package main

import (
	"sync"
	"time"
)

func main() {
	var mu sync.RWMutex
	m := map[string]int{"a": 1, "b": 2}
	done := make(chan int)
	go func() {
		total := 0
		for _, v := range m { // race
			total += v
		}
		done <- total
	}()
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	m["c"] = 3 // race
	mu.Unlock()
	<-done
}
