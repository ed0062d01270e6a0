// corpus: safe
// covers: select, select-default, close, struct-keys, write, read, range
// The reader polls with select/default and reads m only in the branch where ready was received.

package main

import (
	"fmt"
	"time"
)

type point struct{ x, y int }

func main() {
	m := map[point]int{}
	ready := make(chan struct{})
	done := make(chan int)
	go func() {
		polls := 0
		for {
			select {
			case <-ready:
				sum := m[point{1, 1}]
				for p := range m {
					sum += p.x
				}
				done <- sum
				return
			default:
				polls++
				time.Sleep(time.Millisecond)
			}
		}
	}()
	for i := 0; i < 3; i++ {
		m[point{i, i}] = i * 10
	}
	close(ready)
	fmt.Println(<-done)
}
