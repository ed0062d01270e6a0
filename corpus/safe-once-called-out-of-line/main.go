// corpus: safe
// covers: once, out-of-line, int-keys, read, write, waitgroup
// Goroutines call Once.Do through an interface (so it is not inlined) and read the map f filled.

package main

import (
	"fmt"
	"sync"
)

type doer interface{ Do(func()) }

// asDoer hides the concrete type from the compiler, so Do cannot be devirtualised and inlined.
//
//go:noinline
func asDoer(once *sync.Once) doer { return once }

func main() {
	var once sync.Once
	d := asDoer(&once)
	m := map[int]int{}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				d.Do(func() {
					for k := 0; k < 8; k++ {
						m[k] = k
					}
				})
				_ = m[i%8]
			}
		}()
	}
	wg.Wait()
	fmt.Println(len(m))
}
