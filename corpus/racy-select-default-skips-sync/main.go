// corpus: racy
// covers: select, select-default, close, struct-keys, read, write, read/write
// The reader's select takes the default branch when ready is not closed yet and reads m anyway.

package main

import "time"

type point struct{ x, y int }

func main() {
	m := map[point]int{}
	ready := make(chan struct{})
	done := make(chan int)
	go func() {
		select {
		case <-ready:
		default: // not ready: should retry, but falls through
		}
		v := m[point{0, 0}] // race
		done <- v
	}()
	time.Sleep(20 * time.Millisecond)
	m[point{0, 0}] = 1 // race
	close(ready)
	<-done
}
