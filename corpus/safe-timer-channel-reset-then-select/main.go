// corpus: safe
// covers: timer-reset, select, string-keys, read, write
// A flusher goroutine waits in a select on a timer it was handed; main records a pending save and then resets the timer: the timer's firing orders the save before the flusher's read (as -race orders a timer's arming before its channel's delivery).

package main

import (
	"fmt"
	"time"
)

func main() {
	pending := map[string]int{}
	timers := make(chan *time.Timer)
	quit := make(chan struct{})
	flushed := make(chan int)
	go func() {
		t := <-timers
		for {
			select {
			case <-t.C:
				flushed <- pending["saves"]
				return
			case <-quit:
				return
			}
		}
	}()
	t := time.NewTimer(time.Hour)
	timers <- t
	pending["saves"] = 3
	t.Reset(time.Millisecond)
	fmt.Println("flushed", <-flushed)
	close(quit)
}
