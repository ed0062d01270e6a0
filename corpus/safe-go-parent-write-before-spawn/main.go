// corpus: safe
// covers: go, int-keys, write, read, range
// The parent fills m before the go statement; the child only reads, and the parent writes again after joining.

package main

import (
	"fmt"
	"strconv"
)

func main() {
	m := make(map[int]string)
	for i := 0; i < 10; i++ {
		m[i] = strconv.Itoa(i)
	}
	done := make(chan int)
	go func() {
		n := 0
		for k, v := range m {
			if v == strconv.Itoa(k) {
				n++
			}
		}
		n += len(m[3])
		done <- n
	}()
	n := <-done
	m[10] = "10"
	fmt.Println(n)
}
