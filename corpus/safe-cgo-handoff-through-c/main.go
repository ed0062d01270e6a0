// corpus: safe
// covers: cgo, string-keys, read, write
// One goroutine writes a map and then sets a flag in C (behind a C mutex); main polls the flag through C and reads the map once it is set: only the C code orders the two, as -race assumes of every cgo call.

package main

/*
#cgo LDFLAGS: -lpthread
#include <pthread.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int ready;

static void post(void) {
	pthread_mutex_lock(&lock);
	ready = 1;
	pthread_mutex_unlock(&lock);
}

static int posted(void) {
	pthread_mutex_lock(&lock);
	int seen = ready;
	pthread_mutex_unlock(&lock);
	return seen;
}
*/
import "C"

import (
	"fmt"
	"runtime"
)

func main() {
	config := map[string]string{}
	go func() {
		config["mode"] = "ready"
		C.post()
	}()
	for C.posted() == 0 {
		runtime.Gosched()
	}
	fmt.Println(config["mode"])
}
