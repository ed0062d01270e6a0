// corpus: safe
// covers: worker-pool, chan-unbuffered, close, waitgroup, string-keys, read-comma-ok, write
// Workers read a shared read-only price map and send results; only the collector writes the totals map.

package main

import (
	"fmt"
	"sync"
)

type result struct {
	item string
	cost int
}

func main() {
	prices := map[string]int{"apple": 3, "pear": 4, "plum": 5}
	jobs := make(chan string)
	results := make(chan result)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for item := range jobs {
				p, ok := prices[item]
				if !ok {
					p = -1
				}
				results <- result{item, p * 2}
			}
		}()
	}
	go func() {
		for i := 0; i < 30; i++ {
			jobs <- []string{"apple", "pear", "plum", "kiwi"}[i%4]
		}
		close(jobs)
	}()
	go func() {
		wg.Wait()
		close(results)
	}()
	totals := map[string]int{}
	for r := range results {
		totals[r.item] += r.cost
	}
	prices["kiwi"] = 9
	fmt.Println(totals["plum"], len(totals))
}
