// corpus: safe
// covers: sync-map, waitgroup, interface-keys, write, read, delete, range
// Goroutines Store, Load, Delete and Range on a sync.Map concurrently.

package main

import (
	"fmt"
	"sync"
)

func main() {
	var sm sync.Map
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				var k interface{} = i % 10
				if i%2 == 0 {
					k = fmt.Sprint("s", i%10)
				}
				sm.Store(k, g)
				sm.Load(k)
				sm.LoadOrStore(i, g)
				if i%7 == 0 {
					sm.Delete(k)
				}
				if i%25 == 0 {
					sm.Range(func(k, v interface{}) bool { return true })
				}
			}
		}(g)
	}
	wg.Wait()
	n := 0
	sm.Range(func(k, v interface{}) bool { n++; return true })
	fmt.Println(n > 0)
}
