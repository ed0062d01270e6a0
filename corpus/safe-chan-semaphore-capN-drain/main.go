// corpus: safe
// covers: chan-buffered, cap-n, semaphore, string-keys, read, write
// A capacity-3 semaphore bounds the readers; filling it to capacity waits for all of them before main writes m.

package main

import "fmt"

func main() {
	const limit = 3
	sem := make(chan int, limit)
	prices := map[string]int{"apple": 3, "pear": 4, "plum": 5}
	totals := make([]int, 10)
	for i := range totals {
		sem <- i // acquire a slot
		go func(i int) {
			defer func() { <-sem }() // release the slot
			totals[i] = prices["apple"] + prices["plum"]*i
		}(i)
	}
	for i := 0; i < limit; i++ {
		sem <- -1 // succeeds only once every worker has released its slot
	}
	prices["apple"] = 10
	fmt.Println(totals[9], prices["apple"])
}
