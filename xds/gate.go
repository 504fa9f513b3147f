package xds

import (
	"sync"
	"time"
)

// gate bounds the large responses (an initial sync, a state-of-the-world
// resend of every cluster) being sent at once. grpc-go marshals a whole
// message before writing it, so 500 Envoys syncing 10,000 load balancers at
// once would otherwise hold gigabytes of buffers, and thrash the collector
// while the sends compete for the same cores. A stream takes a slot when
// its large response is marshalled and gives it back when it answers that
// type (the client has read the response) or goes away; one that does
// neither is ended by the ack timeout. The total work is the same; memory
// is bounded by the slots.
type gate struct {
	slots chan struct{}
	wait  time.Duration // at most this long for a slot, then go anyway

	mu sync.Mutex
	// held maps a stream holding a slot to the type that took it. A stream
	// holds one slot at most, and one that holds a slot never waits for
	// another (it could then never read the answer that frees its own).
	held map[int64]string
}

type holdKey struct {
	stream  int64
	typeURL string
}

// bigResponse is the number of resources from which a response takes a slot.
const bigResponse = 1000

func newGate(slots int, wait time.Duration) *gate {
	return &gate{slots: make(chan struct{}, slots), wait: wait, held: map[int64]string{}}
}

// acquire takes a slot for a stream's type, unless the stream holds one;
// it gives up when the stream ends (done).
func (g *gate) acquire(k holdKey, done <-chan struct{}) {
	if g == nil || k.stream == 0 {
		return
	}
	g.mu.Lock()
	_, held := g.held[k.stream]
	g.mu.Unlock()
	if held {
		return
	}
	timer := time.NewTimer(g.wait)
	defer timer.Stop()
	select {
	case g.slots <- struct{}{}:
	case <-done:
		return // the stream ended: its send fails at once
	case <-timer.C:
		return // every slot is held by clients not answering: go on
	}
	g.mu.Lock()
	g.held[k.stream] = k.typeURL
	g.mu.Unlock()
}

// release gives back the slot a stream's type holds, if any.
func (g *gate) release(k holdKey) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if typeURL, ok := g.held[k.stream]; ok && typeURL == k.typeURL {
		delete(g.held, k.stream)
		<-g.slots
	}
}

// releaseAll gives back every slot a stream holds.
func (g *gate) releaseAll(stream int64) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.held[stream]; ok {
		delete(g.held, stream)
		<-g.slots
	}
}
