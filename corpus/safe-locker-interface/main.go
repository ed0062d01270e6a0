// corpus: safe
// covers: mutex, rwmutex, out-of-line, string-keys, read, write, waitgroup
// Writers lock through a sync.Locker and readers through RWMutex.RLocker: every Lock, Unlock,
// RLock and RUnlock is a call to the out-of-line method, not an inlined fast path.

package main

import (
	"fmt"
	"strconv"
	"sync"
)

// locker hides the concrete type from the compiler, so the calls cannot be devirtualised.
//
//go:noinline
func locker(l sync.Locker) sync.Locker { return l }

func main() {
	var rw sync.RWMutex
	writers, readers := locker(&rw), locker(rw.RLocker())
	m := map[string]int{}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(2)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				writers.Lock()
				m[strconv.Itoa(g*100+i%10)] = i
				writers.Unlock()
			}
		}(g)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				readers.Lock()
				_ = m[strconv.Itoa(i%10)]
				readers.Unlock()
			}
		}()
	}
	wg.Wait()
	var mu sync.Mutex
	plain := locker(&mu)
	counts := map[int]int{}
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				plain.Lock()
				counts[g]++
				plain.Unlock()
			}
		}(g)
	}
	wg.Wait()
	fmt.Println(len(m), len(counts))
}
