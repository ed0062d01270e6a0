// corpus: safe
// covers: afterfunc, timer-reset, close, string-keys, read, write
// A timer armed for an hour is reset to fire at once after main wrote m: resetting orders what came before it before the callback, as arming does.

package main

import (
	"fmt"
	"time"
)

func main() {
	m := map[string]int{}
	done := make(chan struct{})
	t := time.AfterFunc(time.Hour, func() {
		m["fired"] = m["ready"] + 1
		close(done)
	})
	// Written after arming, before the reset that makes the callback run.
	m["ready"] = 1
	t.Reset(time.Millisecond)
	<-done
	fmt.Println(m["fired"])
}
