// demo is a small loopback HTTP service with a built-in load generator, for showing tracer at
// work. Its maps are used the way real services use them: a session table behind a mutex, an
// item cache behind an RWMutex, and one map with a real bug — `lastReset` is written by a
// background janitor and by the /admin/reset handler without any lock. The two writers are
// rare enough that the Go runtime almost never catches them ("concurrent map writes"), which is
// exactly the kind of race tracer is for.
//
//	demo [-duration 5s] [-clients 4]
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

type service struct {
	sessionsMu sync.Mutex
	sessions   map[string]int // user → logins

	cacheMu sync.RWMutex
	cache   map[int]string // item id → rendered item

	lastReset map[string]time.Time // BUG: written by two goroutines without synchronisation

	requests atomic.Int64
}

func newService() *service {
	return &service{
		sessions:  make(map[string]int),
		cache:     make(map[int]string),
		lastReset: make(map[string]time.Time),
	}
}

func (s *service) login(w http.ResponseWriter, r *http.Request) {
	user := r.URL.Query().Get("user")
	s.sessionsMu.Lock()
	s.sessions[user]++
	n := s.sessions[user]
	s.sessionsMu.Unlock()
	s.requests.Add(1)
	fmt.Fprintf(w, "hello %s (%d)\n", user, n)
}

func (s *service) item(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.Atoi(r.URL.Query().Get("id"))
	s.cacheMu.RLock()
	page, ok := s.cache[id]
	s.cacheMu.RUnlock()
	if !ok {
		page = fmt.Sprintf("item %d", id)
		s.cacheMu.Lock()
		s.cache[id] = page
		if len(s.cache) > 500 {
			clear(s.cache)
		}
		s.cacheMu.Unlock()
	}
	s.requests.Add(1)
	io.WriteString(w, page)
}

func (s *service) reset(w http.ResponseWriter, r *http.Request) {
	s.lastReset["admin"] = time.Now() // races with janitor
	s.requests.Add(1)
	io.WriteString(w, "reset\n")
}

// janitor expires sessions now and then; it also records its run in lastReset without the lock
// that nobody defined for it.
func (s *service) janitor(stop <-chan struct{}) {
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ticker.C:
			s.sessionsMu.Lock()
			for user, logins := range s.sessions {
				if logins > 50 {
					delete(s.sessions, user)
				}
			}
			s.sessionsMu.Unlock()
			s.lastReset["janitor"] = time.Now() // races with /admin/reset
		}
	}
}

// adminEvery is how often the load calls /admin/reset, the handler that races with the janitor.
const adminEvery = 500 * time.Millisecond

// load runs `clients` goroutines that call the service until `deadline`, as fast as they can or,
// if rps > 0, at rps requests per second in all (a service at its usual pace).
func load(base string, clients int, rps int, deadline time.Time) int64 {
	var done atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	var pace <-chan time.Time
	if rps > 0 {
		ticker := time.NewTicker(time.Second / time.Duration(rps))
		defer ticker.Stop()
		pace = ticker.C
	}
	get := func(path string) {
		if pace != nil {
			<-pace
		}
		resp, err := client.Get(base + path)
		if err != nil {
			log.Fatalf("GET %s: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done.Add(1)
	}
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			lastAdmin := time.Now()
			for i := 0; time.Now().Before(deadline); i++ {
				get(fmt.Sprintf("/login?user=u%d", (c*31+i)%40))
				get(fmt.Sprintf("/item?id=%d", (i*7+c)%800))
				if c == 0 && time.Since(lastAdmin) > adminEvery {
					get("/admin/reset")
					lastAdmin = time.Now()
				}
			}
		}(c)
	}
	wg.Wait()
	return done.Load()
}

func main() {
	duration := flag.Duration("duration", 5*time.Second, "how long the built-in load runs")
	clients := flag.Int("clients", 4, "concurrent clients of the built-in load")
	rps := flag.Int("rps", 0, "requests per second of the built-in load (0: as fast as the clients can)")
	flag.Parse()

	s := newService()
	mux := http.NewServeMux()
	mux.HandleFunc("/login", s.login)
	mux.HandleFunc("/item", s.item)
	mux.HandleFunc("/admin/reset", s.reset)
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	server := &http.Server{Handler: mux}
	go server.Serve(listener)
	stop := make(chan struct{})
	go s.janitor(stop)

	base := "http://" + listener.Addr().String()
	log.Printf("demo: serving on %s; %d clients for %s", base, *clients, *duration)
	log.Printf("demo: maps: sessions %p (mutex), cache %p (rwmutex), lastReset %p (no lock: racy)",
		s.sessions, s.cache, s.lastReset)
	done := load(base, *clients, *rps, time.Now().Add(*duration))
	close(stop)
	server.Close()
	log.Printf("demo: %d requests served (%.0f/s)", s.requests.Load(), float64(done)/duration.Seconds())
}
