// corpus: safe
// covers: rwmutex, waitgroup, string-keys, range, read-comma-ok, write, delete
// Readers range and look up m under RLock while a writer inserts and deletes under Lock.

package main

import (
	"fmt"
	"strconv"
	"sync"
)

func main() {
	var mu sync.RWMutex
	m := map[string]int{"a": 1, "b": 2}
	var wg sync.WaitGroup
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				mu.RLock()
				sum := 0
				for _, v := range m {
					sum += v
				}
				_, ok := m["a"]
				mu.RUnlock()
				_, _ = sum, ok
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 100; i++ {
			k := "w" + strconv.Itoa(i%10)
			mu.Lock()
			m[k] = i
			if i%3 == 0 {
				delete(m, k)
			}
			mu.Unlock()
		}
	}()
	wg.Wait()
	fmt.Println(m["a"])
}
