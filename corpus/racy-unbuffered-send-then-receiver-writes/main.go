// corpus: racy
// covers: chan-unbuffered, string-keys, read, write, write/read
// The receiver writes the map after its receive, the sender reads it after its send returned:
// nothing orders the two. The send sits in a branch that rejoins the code after it.

package main

import (
	"fmt"
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
	state := map[string]int{"k": 0}
	ch := make(chan int)
	done := make(chan bool)
	go func() {
		<-ch
		time.Sleep(10 * time.Millisecond)
		state["k"] = 1 // race
		done <- true
	}()
	notify(ch, 1, false)
	notify(ch, 2, true)
	fmt.Println(state["k"] >= 0) // race
	<-done
}
