// corpus: safe
// covers: reflect, many-goroutines
// Goroutines build new types with reflect (StructOf, FuncOf, MapOf) at the same time: the runtime records each new type's names in maps of its own, under a lock of its own, which orders them.

package main

import (
	"fmt"
	"reflect"
	"sync"
)

func main() {
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				field := reflect.StructField{Name: fmt.Sprintf("F%d_%d", i, j), Type: reflect.TypeOf(0), Tag: `json:"f"`}
				record := reflect.StructOf([]reflect.StructField{field})
				handler := reflect.FuncOf([]reflect.Type{record}, []reflect.Type{reflect.SliceOf(record)}, false)
				index := reflect.MapOf(reflect.TypeOf(""), handler)
				_ = reflect.New(index).Elem().Type().Elem().In(0).Field(0).Name
			}
		}(i)
	}
	wg.Wait()
	fmt.Println("types made")
}
