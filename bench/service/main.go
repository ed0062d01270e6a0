// service: the workload of `cargo xtask bench --part service`. A loopback HTTP service shaped
// like a real one — a mutex-protected store, an RWMutex read cache in front of it, a worker
// pool fed through channels — driven by an in-process load generator. It prints one JSON line:
// requests, requests per second and latency percentiles. It is race-free, so `-race` builds
// run it to the end too.
//
//	service [-duration 5s] [-clients 8]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"
)

type store struct {
	mu    sync.Mutex
	items map[string]int
}

type cache struct {
	mu      sync.RWMutex
	entries map[string]int
}

type job struct {
	key    string
	result chan int
}

type service struct {
	store store
	cache cache
	jobs  chan job
}

// worker sums a key's digits the slow way, standing in for real work off the request path.
func (s *service) worker() {
	for j := range s.jobs {
		sum := 0
		for _, c := range j.key {
			sum += int(c)
		}
		j.result <- sum
	}
}

func (s *service) put(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Query().Get("k")
	s.store.mu.Lock()
	s.store.items[key]++
	n := s.store.items[key]
	s.store.mu.Unlock()
	s.cache.mu.Lock()
	s.cache.entries[key] = n
	s.cache.mu.Unlock()
	fmt.Fprintln(w, n)
}

func (s *service) get(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Query().Get("k")
	s.cache.mu.RLock()
	n, ok := s.cache.entries[key]
	s.cache.mu.RUnlock()
	if !ok {
		s.store.mu.Lock()
		n = s.store.items[key]
		s.store.mu.Unlock()
	}
	fmt.Fprintln(w, n)
}

func (s *service) work(w http.ResponseWriter, r *http.Request) {
	j := job{key: r.URL.Query().Get("k"), result: make(chan int, 1)}
	s.jobs <- j
	fmt.Fprintln(w, <-j.result)
}

// client sends requests until the deadline and returns their latencies.
func client(base string, id int, deadline time.Time) []time.Duration {
	httpClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	paths := []string{"/put", "/get", "/get", "/get", "/work"}
	var latencies []time.Duration
	for i := 0; time.Now().Before(deadline); i++ {
		url := base + paths[i%len(paths)] + "?k=key" + strconv.Itoa((id*7+i)%64)
		start := time.Now()
		response, err := httpClient.Get(url)
		if err != nil {
			log.Fatal(err)
		}
		io.Copy(io.Discard, response.Body)
		response.Body.Close()
		latencies = append(latencies, time.Since(start))
	}
	return latencies
}

func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[int(float64(len(sorted)-1)*p)].Microseconds())
}

func main() {
	duration := flag.Duration("duration", 5*time.Second, "how long the load runs")
	clients := flag.Int("clients", 8, "concurrent clients")
	flag.Parse()

	s := &service{
		store: store{items: map[string]int{}},
		cache: cache{entries: map[string]int{}},
		jobs:  make(chan job),
	}
	for i := 0; i < 4; i++ {
		go s.worker()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/put", s.put)
	mux.HandleFunc("/get", s.get)
	mux.HandleFunc("/work", s.work)
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(listener, mux)
	base := "http://" + listener.Addr().String()

	start := time.Now()
	deadline := start.Add(*duration)
	results := make(chan []time.Duration)
	for id := 0; id < *clients; id++ {
		go func(id int) { results <- client(base, id, deadline) }(id)
	}
	var all []time.Duration
	for id := 0; id < *clients; id++ {
		all = append(all, <-results...)
	}
	elapsed := time.Since(start)
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	json.NewEncoder(os.Stdout).Encode(map[string]float64{
		"requests":            float64(len(all)),
		"requests_per_second": float64(len(all)) / elapsed.Seconds(),
		"p50_us":              percentile(all, 0.50),
		"p99_us":              percentile(all, 0.99),
	})
}
