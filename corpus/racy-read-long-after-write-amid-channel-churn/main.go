// corpus: racy
// covers: go, chan-buffered, goroutine-churn, address-reuse, waitgroup, string-keys, write, read, write/read
// A goroutine writes a setting once; another reads it 1.5 s later with nothing between them, while the program makes tens of thousands of short-lived channels a second: the collector reuses their memory at once, and tracer evicts their objects by the thousand (a channel made where another died, or whose objects may have been evicted, must not pass on what the old one carried).

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
	go func() {
		settings["limit"] = 1 // race
		// Its knowledge goes into a short-lived channel's objects, which tracer soon evicts.
		done := make(chan int, 1)
		done <- 1
		<-done
		<-stop
	}()
	read := make(chan struct{})
	go func() {
		time.Sleep(1500 * time.Millisecond)
		reply := make(chan int, 1)
		reply <- 1
		<-reply
		_ = settings["limit"] // race
		close(read)
	}()
	<-read
	close(stop)
}
