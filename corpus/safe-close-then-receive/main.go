// corpus: safe
// covers: close, waitgroup, int-keys, write, read-comma-ok, range
// A loader fills m and closes ready; readers receive from the closed channel before reading m.

package main

import (
	"fmt"
	"sync"
)

func main() {
	m := map[int]string{}
	ready := make(chan struct{})
	go func() {
		for i := 0; i < 5; i++ {
			m[i] = fmt.Sprint("v", i)
		}
		close(ready)
	}()
	var wg sync.WaitGroup
	found := make([]bool, 3)
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			<-ready
			_, found[r] = m[r]
			for k := range m {
				_ = k
			}
		}(r)
	}
	wg.Wait()
	fmt.Println(found)
}
