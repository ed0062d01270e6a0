// corpus: racy
// covers: chan-buffered, cap-1, string-keys, read-comma-ok, write, write/read
// A send on a buffered channel does not wait for the receiver, so the sender's later read is unordered with the receiver's write.

package main

import "time"

func main() {
	m := map[string]int{}
	ch := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		k := <-ch
		m[k] = 1 // race
		close(done)
	}()
	ch <- "a" // returns immediately: there is room in the buffer
	time.Sleep(20 * time.Millisecond)
	v, ok := m["a"] // race
	_, _ = v, ok
	<-done
}
