// corpus: racy
// covers: chan-buffered, cap-N, per-slot, int-keys, write, write/read
// A receive is ordered only after the send whose value it takes. The writer's value waits in the second slot while the reader takes the first one, sent before the writer started, so the write and the read are unordered (a model with one clock per channel would miss this).

package main

import "runtime"

func main() {
	m := map[int]int{}
	ch := make(chan int, 2)
	ch <- 0 // first slot
	go func() {
		m[1] = 1 // race
		ch <- 1  // second slot
	}()
	for len(ch) < 2 { // not synchronisation: len reads the count without the lock
		runtime.Gosched()
	}
	<-ch     // takes the first value
	_ = m[1] // race
	<-ch
}
