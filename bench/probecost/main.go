// probecost times tight loops of single operations, each hitting one probe class, so that
// `cargo xtask bench` can compare the time per operation untraced and traced:
//
//	probecost map N      m[k] = v on a heap map          (map-entry probe)
//	probecost lock N     mu.Lock(); mu.Unlock()          (two inline sync probes)
//	probecost call N     wg.Add(1); wg.Done()            (call entries and returns)
//	probecost local N    m[k] = v on a stack-local map   (map-entry probe, dropped in the kernel)
//
// It prints "ns/op X" for the timed loop only.
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

var sink map[int]int

//go:noinline
func mapLoop(n int) {
	m := make(map[int]int, 1024)
	sink = m
	for i := 0; i < n; i++ {
		m[i&1023] = i
	}
}

//go:noinline
func localLoop(n int) int {
	var m = map[int]int{}
	for i := 0; i < n; i++ {
		m[i&7] = i
	}
	return len(m)
}

//go:noinline
func lockLoop(n int, mu *sync.Mutex) {
	for i := 0; i < n; i++ {
		mu.Lock()
		mu.Unlock()
	}
}

//go:noinline
func callLoop(n int, wg *sync.WaitGroup) {
	for i := 0; i < n; i++ {
		wg.Add(1)
		wg.Done()
	}
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: probecost map|lock|call|local N")
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	switch os.Args[1] {
	case "map":
		mapLoop(n)
	case "local":
		localLoop(n)
	case "lock":
		lockLoop(n, &mu)
	case "call":
		callLoop(n, &wg)
	default:
		fmt.Fprintln(os.Stderr, "unknown loop", os.Args[1])
		os.Exit(2)
	}
	fmt.Printf("ns/op %.1f\n", float64(time.Since(start).Nanoseconds())/float64(n))
}
