// corpus: safe
// covers: chan-unbuffered, ownership-transfer, string-keys, read, write
// A receive on an unbuffered channel is synchronised before the send completes: the receiver
// fills a map before each receive (coming late, so the sender waits in its send), the sender
// reads it once its send has returned, then hands the map back with a second channel. The send
// sits in a branch that rejoins the code after it, where its completion is observed.

package main

import (
	"fmt"
	"strconv"
	"time"
)

var notified []int

//go:noinline
func notify(ch chan int, v int, quiet bool) int {
	if !quiet {
		ch <- v
	}
	notified = append(notified, v)
	return len(notified)
}

func main() {
	state := map[string]int{}
	ch := make(chan int)
	ack := make(chan bool)
	go func() {
		for i := 0; i < 20; i++ {
			time.Sleep(time.Millisecond)
			state["k"+strconv.Itoa(i%5)] = i
			<-ch
			<-ack
		}
	}()
	total := 0
	for i := 0; i < 20; i++ {
		notify(ch, i, false)
		total += state["k"+strconv.Itoa(i%5)]
		notify(ch, i, true)
		ack <- true
	}
	fmt.Println(total >= 0)
}
