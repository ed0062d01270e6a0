// corpus: safe
// covers: go, goroutine-churn, waitgroup, mutex, int-keys, write, read
// Five thousand short-lived goroutines each update m under a mutex; main reads m after wg.Wait.

package main

import (
	"fmt"
	"sync"
)

func main() {
	var mu sync.Mutex
	m := map[int]int{}
	var wg sync.WaitGroup
	for i := 0; i < 5000; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			mu.Lock()
			m[i%64]++
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	fmt.Println(m[0], m[63])
}
