// corpus: racy
// covers: timer-reset, select, string-keys, read, write
// The twin of safe-timer-channel-reset-then-select: main resets the timer first and records the pending save after, so the timer's firing does not order the save before the flusher's read.

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
				flushed <- pending["saves"] // race
				return
			case <-quit:
				return
			}
		}
	}()
	t := time.NewTimer(time.Hour)
	timers <- t
	t.Reset(time.Millisecond)
	pending["saves"] = 3 // race
	fmt.Println("flushed", <-flushed)
	close(quit)
}
