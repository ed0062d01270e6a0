// corpus: safe
// covers: go, goroutine-churn, chan-unbuffered, int-keys, write, read
// Two thousand goroutines one after another, each started after the parent's write and joined by a channel before its next one: exited goroutines' g structs are reused for new ones, which get new ids.

package main

import "fmt"

func main() {
	m := map[int]int{}
	done := make(chan struct{})
	for i := 0; i < 2000; i++ {
		m[i%16] = i
		go func(i int) {
			m[(i+1)%16] += m[i%16]
			done <- struct{}{}
		}(i)
		<-done
	}
	fmt.Println(len(m), m[0])
}
