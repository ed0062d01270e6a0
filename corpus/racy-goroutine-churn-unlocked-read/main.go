// corpus: racy
// covers: go, goroutine-churn, waitgroup, mutex, int-keys, read-comma-ok, write, read/write
// An early goroutine reads m without the lock; the 5000 churning goroutines that follow write it under a mutex.

package main

import (
	"sync"
	"time"
)

func main() {
	var mu sync.Mutex
	m := map[int]int{0: 1}
	peeked := make(chan bool, 1)
	go func() {
		_, ok := m[0] // race
		peeked <- ok
	}()
	time.Sleep(20 * time.Millisecond)
	var wg sync.WaitGroup
	for i := 0; i < 5000; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			mu.Lock()
			m[i%64]++ // race
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	<-peeked
}
