// corpus: safe
// covers: afterfunc, close, int-keys, read, write, delete
// Main writes m before arming time.AfterFunc; the callback updates m and main reads it after the callback signals.

package main

import (
	"fmt"
	"time"
)

func main() {
	m := map[int]string{1: "armed"}
	done := make(chan struct{})
	time.AfterFunc(2*time.Millisecond, func() {
		if m[1] == "armed" {
			m[2] = "fired"
		}
		delete(m, 1)
		close(done)
	})
	<-done
	fmt.Println(m[2])
}
