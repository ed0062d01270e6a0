// Scale workload for `cargo xtask bench --part scale`: what tracer's memory must survive.
//
//	scale live N    N goroutines alive at once, each with its own map, until all have started
//	scale churn N   N goroutines created over the run, 1000 at a time, each writing a shared
//	                mutex-protected map before it exits
//	scale maps N    N maps created and written once each (a thousand alive at a time)
//
// It prints one JSON line: {"mode":…, "count":…, "seconds":…}.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

var keep []map[int]int

func live(n int) {
	var started, done sync.WaitGroup
	release := make(chan struct{})
	started.Add(n)
	done.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) {
			defer done.Done()
			own := map[int]int{i: i}
			started.Done()
			<-release
			own[i]++
		}(i)
	}
	started.Wait()
	close(release)
	done.Wait()
}

func churn(n int) {
	var mu sync.Mutex
	shared := map[int]int{}
	for created := 0; created < n; created += 1000 {
		var wg sync.WaitGroup
		for i := created; i < created+1000 && i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				mu.Lock()
				shared[i%1024] = i
				mu.Unlock()
			}(i)
		}
		wg.Wait()
	}
}

func maps(n int) {
	keep = make([]map[int]int, 1000)
	for i := 0; i < n; i++ {
		m := make(map[int]int)
		m[i] = i
		keep[i%len(keep)] = m
	}
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: scale live|churn|maps N")
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	start := time.Now()
	switch os.Args[1] {
	case "live":
		live(n)
	case "churn":
		churn(n)
	case "maps":
		maps(n)
	default:
		fmt.Fprintf(os.Stderr, "unknown mode %q\n", os.Args[1])
		os.Exit(2)
	}
	json.NewEncoder(os.Stdout).Encode(map[string]any{
		"mode": os.Args[1], "count": n, "seconds": time.Since(start).Seconds(),
	})
}
