// corpus: racy
// covers: chan-buffered, cap-n, semaphore, string-keys, delete, write, delete/write
// A semaphore of capacity 2 admits two goroutines at once, so it does not protect the map they both modify.

package main

import (
	"sync"
	"time"
)

func main() {
	sem := make(chan struct{}, 2)
	m := map[string]int{"a": 1}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		sem <- struct{}{}
		delete(m, "a") // race
		time.Sleep(40 * time.Millisecond)
		<-sem
	}()
	go func() {
		defer wg.Done()
		time.Sleep(20 * time.Millisecond)
		sem <- struct{}{}
		m["b"] = 2 // race
		<-sem
	}()
	wg.Wait()
}
