// corpus: safe
// covers: waitgroup, string-keys, write, read, range, clear
// Main writes m only between WaitGroup phases; inside a phase the workers only read it.

package main

import (
	"fmt"
	"strconv"
	"sync"
)

func main() {
	m := map[string]int{}
	results := make([]int, 4)
	for phase := 0; phase < 3; phase++ {
		for i := 0; i < 8; i++ {
			m["k"+strconv.Itoa(i)] = phase * i
		}
		var wg sync.WaitGroup
		wg.Add(len(results))
		for w := range results {
			go func(w int) {
				defer wg.Done()
				sum := 0
				for _, v := range m {
					sum += v
				}
				results[w] = sum + m["k"+strconv.Itoa(w)]
			}(w)
		}
		wg.Wait()
		if phase < 2 {
			clear(m)
		}
	}
	fmt.Println(results)
}
