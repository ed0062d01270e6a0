// corpus: safe
// covers: chan-buffered, cap-1, semaphore, waitgroup, int-keys, read, write
// A channel with capacity 1 is used as a lock around every map access.

package main

import (
	"fmt"
	"sync"
)

func main() {
	sem := make(chan struct{}, 1)
	m := map[int]int{}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				sem <- struct{}{}
				m[i%8] += g
				_ = m[(i+1)%8]
				<-sem
			}
		}(g)
	}
	wg.Wait()
	fmt.Println(m[3])
}
