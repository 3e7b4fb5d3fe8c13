// A tiny Go library for bun:ffi, built with -buildmode=c-shared. Loading it
// starts a Go runtime inside Bun, which is all it takes to set up the hang.
package main

import "C"

import "sync"

// Fib computes fib(n) for every n below the argument on its own goroutine
// and returns the sum, so the runtime really schedules work.
//
//export Fib
func Fib(n C.int) C.longlong {
	var wg sync.WaitGroup
	results := make([]int64, int(n))
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			a, b := int64(0), int64(1)
			for k := 0; k < i; k++ {
				a, b = b, a+b
			}
			results[i] = a
		}(i)
	}
	wg.Wait()
	var sum int64
	for _, r := range results {
		sum += r
	}
	return C.longlong(sum)
}

func main() {}
