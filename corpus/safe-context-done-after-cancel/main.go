// corpus: safe
// covers: context, atomic-value, string-keys, write, read
// A goroutine fills a map and cancels a context; the reader, which starts after that (a sleep, which orders nothing), receives from ctx.Done() of the already cancelled context, whose lock-free fast path loads the channel cancel stored, and reads the map.

package main

import (
	"context"
	"fmt"
	"time"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	m := map[string]int{}
	done := make(chan int)
	go func() {
		// Long enough for the writer to cancel first, so Done takes its lock-free path (a
		// sleep orders nothing, for tracer as for -race).
		time.Sleep(20 * time.Millisecond)
		<-ctx.Done()
		done <- m["a"]
	}()
	go func() {
		m["a"] = 1
		cancel()
	}()
	fmt.Println(<-done)
}
