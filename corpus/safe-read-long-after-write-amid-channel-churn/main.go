// corpus: safe
// covers: go, chan-buffered, goroutine-churn, address-reuse, waitgroup, string-keys, write, read
// A goroutine writes a setting and hands it on through a channel made amid tens of thousands of short-lived ones a second (at memory the collector reused); the reader takes it 1.5 s later: ordered.

package main

import (
	"sync"
	"time"
)

// churn makes channels until stop closes: eight goroutines at a time, each through its own.
func churn(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				reply := make(chan int, 1)
				reply <- i
				<-reply
			}()
		}
		wg.Wait()
	}
}

func main() {
	settings := map[string]int{}
	stop := make(chan struct{})
	go churn(stop)
	time.Sleep(500 * time.Millisecond)
	written := make(chan struct{}, 1)
	go func() {
		settings["limit"] = 1
		written <- struct{}{}
	}()
	read := make(chan struct{})
	go func() {
		time.Sleep(1500 * time.Millisecond)
		<-written
		_ = settings["limit"]
		close(read)
	}()
	<-read
	close(stop)
}
