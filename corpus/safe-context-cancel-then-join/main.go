// corpus: safe
// covers: context, select, close, string-keys, write, read
// A worker updates m until ctx.Done fires and then signals exit; main reads m only after that signal.

package main

import (
	"context"
	"fmt"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	m := map[string]int{}
	keys := make(chan string)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		for {
			select {
			case <-ctx.Done():
				m["stopped"] = 1
				return
			case k := <-keys:
				m[k]++
			}
		}
	}()
	for _, k := range []string{"a", "b", "a"} {
		keys <- k
	}
	cancel()
	<-exited
	fmt.Println(m["a"], m["stopped"])
}
