// corpus: racy
// covers: chan-buffered, cap-n, struct-keys, read, write, write/read
// A producer queues a map on a channel of capacity 4 and then updates it again while the consumer reads it.

package main

import "time"

type key struct {
	shard int
	name  string
}

func main() {
	queue := make(chan map[key]int, 4)
	done := make(chan int)
	go func() {
		b := <-queue
		time.Sleep(20 * time.Millisecond)
		n := b[key{1, "a"}] // race
		done <- n
	}()
	b := map[key]int{{0, "a"}: 1}
	queue <- b
	b[key{1, "a"}] = 2 // race
	<-done
}
