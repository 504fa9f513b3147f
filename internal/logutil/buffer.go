package logutil

import (
	"bytes"
	"sync"
)

// Buffer is a log sink that may be read while loggers on other goroutines
// write to it: tests hand it to slog handlers and read what was logged.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
