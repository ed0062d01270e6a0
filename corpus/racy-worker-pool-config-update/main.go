// corpus: racy
// covers: worker-pool, chan-buffered, close, waitgroup, string-keys, read, write, read/write
// Main updates the price map the workers read while jobs are still in flight, before collecting the results.

package main

import (
	"sync"
	"time"
)

func main() {
	prices := map[string]int{"apple": 3, "pear": 4}
	jobs := make(chan string, 4)
	results := make(chan int, 4)
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for item := range jobs {
				results <- prices[item] // race
			}
		}()
	}
	jobs <- "apple"
	jobs <- "pear"
	close(jobs)
	time.Sleep(20 * time.Millisecond)
	prices["apple"] = 5 // race
	wg.Wait()
	close(results)
	for range results {
	}
}
