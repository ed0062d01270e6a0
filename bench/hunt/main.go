// hunt: the workload of `cargo xtask bench --part hunt`, which measures how soon tracer reports
// a map race under an overhead budget. Two roles, two processes, so that only the service is
// traced:
//
//	hunt serve [-race-every 1s] [-race-after 5s]
//	hunt load -addr HOST:PORT [-clients 4 | -rps 300] [-duration 10s]
//
// The service is a loopback HTTP service shaped like a real one: a mutex-protected store, an
// RWMutex cache, a worker pool fed through a channel. Every request also reads a limits map
// that a reloader goroutine rewrites every -race-every, without a lock: one write/read race per
// period, the rare write racing with the next request's read. The reloader starts after
// -race-after, so that tracer's first moments (which may trace everything) do not count. The
// service prints `listening ADDR`, then `race-start UNIX_NANOS` at its first racy write.
//
// The load generator sends requests as fast as -clients connections allow (busy), or at -rps
// requests per second in all (quiet), and prints one JSON line: requests, requests per second,
// latency percentiles.
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

type service struct {
	storeMu sync.Mutex
	store   map[string]int
	cacheMu sync.RWMutex
	cache   map[string]int
	jobs    chan job
	// limits is rewritten by reload and read by every request without a lock: the race.
	limits map[string]int
}

type job struct {
	key    string
	result chan int
}

func (s *service) worker() {
	for j := range s.jobs {
		sum := 0
		for _, c := range j.key {
			sum += int(c)
		}
		j.result <- sum
	}
}

func (s *service) limit() int {
	return s.limits["requests"] // races with reload
}

func (s *service) put(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Query().Get("k")
	s.storeMu.Lock()
	s.store[key]++
	n := s.store[key]
	s.storeMu.Unlock()
	s.cacheMu.Lock()
	s.cache[key] = n
	s.cacheMu.Unlock()
	fmt.Fprintln(w, n, s.limit())
}

func (s *service) get(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Query().Get("k")
	s.cacheMu.RLock()
	n, ok := s.cache[key]
	s.cacheMu.RUnlock()
	if !ok {
		s.storeMu.Lock()
		n = s.store[key]
		s.storeMu.Unlock()
	}
	fmt.Fprintln(w, n, s.limit())
}

func (s *service) work(w http.ResponseWriter, r *http.Request) {
	j := job{key: r.URL.Query().Get("k"), result: make(chan int, 1)}
	s.jobs <- j
	fmt.Fprintln(w, <-j.result, s.limit())
}

// reload rewrites the limits every period, after a first wait.
func (s *service) reload(after, every time.Duration) {
	time.Sleep(after)
	for i := 0; ; i++ {
		s.limits["requests"] = 1000 + i%10 // races with limit
		if i == 0 {
			fmt.Printf("race-start %d\n", time.Now().UnixNano())
		}
		time.Sleep(every)
	}
}

func serve(args []string) {
	flags := flag.NewFlagSet("serve", flag.ExitOnError)
	every := flags.Duration("race-every", time.Second, "period of the racy write (0: no race)")
	after := flags.Duration("race-after", 5*time.Second, "wait before the first racy write")
	flags.Parse(args)

	s := &service{
		store:  map[string]int{},
		cache:  map[string]int{},
		jobs:   make(chan job),
		limits: map[string]int{"requests": 1000},
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
	fmt.Printf("listening %s\n", listener.Addr())
	if *every > 0 {
		go s.reload(*after, *every)
	}
	log.Fatal(http.Serve(listener, mux))
}

// client sends requests until the deadline, at most one per `pace` if pace > 0, and returns
// their latencies.
func client(base string, id int, pace time.Duration, deadline time.Time) []time.Duration {
	httpClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	paths := []string{"/put", "/get", "/get", "/get", "/work"}
	var latencies []time.Duration
	next := time.Now()
	for i := 0; time.Now().Before(deadline); i++ {
		if pace > 0 {
			time.Sleep(time.Until(next))
			next = next.Add(pace)
		}
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

func load(args []string) {
	flags := flag.NewFlagSet("load", flag.ExitOnError)
	addr := flags.String("addr", "", "the service's HOST:PORT")
	clients := flags.Int("clients", 4, "concurrent connections")
	rps := flags.Float64("rps", 0, "requests per second in all (0: as fast as possible)")
	duration := flags.Duration("duration", 10*time.Second, "how long the load runs")
	flags.Parse(args)

	var pace time.Duration
	if *rps > 0 {
		pace = time.Duration(float64(*clients) * float64(time.Second) / *rps)
	}
	start := time.Now()
	deadline := start.Add(*duration)
	results := make(chan []time.Duration)
	for id := 0; id < *clients; id++ {
		go func(id int) { results <- client("http://"+*addr, id, pace, deadline) }(id)
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

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: hunt serve|load [flags]")
	}
	switch os.Args[1] {
	case "serve":
		serve(os.Args[2:])
	case "load":
		load(os.Args[2:])
	default:
		log.Fatalf("unknown role %q", os.Args[1])
	}
}
