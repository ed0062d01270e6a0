// corpus: safe
// covers: pprof-labels, string-keys, range, write
// Workers run under pprof labels (a map up to Go 1.23) while the CPU profiler runs; the profile writer goroutine reads each sample's labels: setting labels and reading the profile order the two, as -race has them.

package main

import (
	"context"
	"fmt"
	"io"
	"runtime/pprof"
	"sync"
	"time"
)

// spin keeps a CPU busy for d, so that the profiler takes samples with the worker's labels.
func spin(d time.Duration) int {
	n := 0
	for start := time.Now(); time.Since(start) < d; n++ {
	}
	return n
}

func main() {
	if err := pprof.StartCPUProfile(io.Discard); err != nil {
		panic(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			pprof.Do(context.Background(), pprof.Labels("worker", fmt.Sprint(i)), func(context.Context) {
				spin(100 * time.Millisecond)
			})
		}(i)
	}
	wg.Wait()
	pprof.StopCPUProfile()
	fmt.Println("profiled")
}
