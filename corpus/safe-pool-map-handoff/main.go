// corpus: safe
// covers: pool, pool-handoff, waitgroup, string-keys, write, read, clear
// A goroutine fills a scratch map and Puts it in a sync.Pool; another Gets a map (that one or a new one) and uses it.

package main

import (
	"fmt"
	"sync"
	"time"
)

var pool = sync.Pool{New: func() interface{} { return map[string]int{} }}

func main() {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		m := pool.Get().(map[string]int)
		m["a"] = 1
		m["b"] = 2
		pool.Put(m) // hands the map over; never touched again here
	}()
	got := 0
	go func() {
		defer wg.Done()
		time.Sleep(10 * time.Millisecond) // not needed for correctness, only to make reuse likely
		m := pool.Get().(map[string]int)
		got = m["a"] + m["b"]
		clear(m)
		m["c"] = 3
		pool.Put(m)
	}()
	wg.Wait()
	fmt.Println(got >= 0)
}
