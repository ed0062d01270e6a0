// corpus: racy
// covers: context, atomic-value, string-keys, write, read
// The twin of safe-context-done-after-cancel: the writer writes the map after cancelling, so the reader's read after ctx.Done() is not ordered with it.

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
		done <- m["a"] // race
	}()
	go func() {
		cancel()
		m["a"] = 1 // race
	}()
	fmt.Println(<-done)
}
