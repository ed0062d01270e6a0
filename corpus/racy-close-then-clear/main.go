// corpus: racy
// covers: close, int-keys, clear, write, clear/write
// A goroutine closes ready and only then clears m, so main's write after receiving from ready is unordered with the clear.

package main

import "time"

func main() {
	m := map[int]bool{1: true}
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		close(ready)
		clear(m) // race
		close(done)
	}()
	<-ready
	time.Sleep(20 * time.Millisecond)
	m[2] = true // race
	<-done
}
