// corpus: racy
// covers: mutex, contended, many-goroutines, string-keys, read-comma-ok, write, write/read
// Eight goroutines update m under mu, but a monitor goroutine peeks at m with v, ok and never takes mu.

package main

import (
	"sync"
	"time"
)

func main() {
	var mu sync.Mutex
	m := map[string]int{}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				mu.Lock()
				m["hits"]++ // race
				mu.Unlock()
			}
		}()
	}
	done := make(chan bool)
	go func() {
		time.Sleep(40 * time.Millisecond)
		_, ok := m["hits"] // race
		done <- ok
	}()
	wg.Wait()
	<-done
}
