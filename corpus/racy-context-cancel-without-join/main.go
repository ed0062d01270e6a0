// corpus: racy
// covers: context, string-keys, read-comma-ok, write, write/read
// Main cancels the context and reads m without waiting for the worker, which writes m when it sees ctx.Done.

package main

import (
	"context"
	"time"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	m := map[string]int{}
	exited := make(chan struct{})
	go func() {
		<-ctx.Done()
		m["stopped"] = 1 // race
		close(exited)
	}()
	cancel()
	time.Sleep(20 * time.Millisecond)
	_, ok := m["stopped"] // race
	_ = ok
	<-exited
}
