// corpus: safe
// covers: mutex, contended, many-goroutines, defer-unlock, waitgroup, string-keys, write, read, delete, range
// Sixteen goroutines hammer one map under a single mutex, including deletes and range.

package main

import (
	"fmt"
	"strconv"
	"sync"
)

func main() {
	var mu sync.Mutex
	m := map[string]int{}
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				k := "k" + strconv.Itoa(i%32)
				func() {
					mu.Lock()
					defer mu.Unlock()
					m[k]++
					if m[k]%7 == 0 {
						delete(m, k)
					}
					if i%50 == 0 {
						sum := 0
						for _, v := range m {
							sum += v
						}
						_ = sum
					}
				}()
			}
		}(g)
	}
	wg.Wait()
	mu.Lock()
	n := 0
	for range m {
		n++
	}
	mu.Unlock()
	fmt.Println(n <= 32)
}
