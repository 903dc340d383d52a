package budget

import (
	"errors"
	"sync"
	"testing"
	"time"
)

func TestPoolSplitsTheBudget(t *testing.T) {
	p := New(Config{Total: 128 << 20, Workers: 4})
	if p.Own() != 16<<20 || p.PerFile() != 80<<20 {
		t.Fatalf("own %d per file %d, want 16 MiB and 80 MiB", p.Own(), p.PerFile())
	}
	if d := New(Config{Workers: 2}); d.PerFile() != 96<<20 {
		t.Fatalf("default per file with 2 workers %d, want 96 MiB", d.PerFile())
	}
	if d := New(Config{Workers: 16}); d.Own()*16+d.PerFile()-d.Own() != 512<<20 {
		t.Fatalf("default total with 16 workers is not 16 x 32 MiB")
	}
}

func TestAccountRefusesPastPerFile(t *testing.T) {
	p := New(Config{Total: 64 << 20, Workers: 2})
	a := p.Account()
	defer a.Close()
	for i := 0; i < 48; i++ {
		if err := a.Charge(1 << 20); err != nil {
			t.Fatalf("charge %d MiB: %v", i+1, err)
		}
	}
	err := a.Charge(1)
	var ex *ExceededError
	if !errors.As(err, &ex) || ex.Wait || ex.Limit != 48<<20 {
		t.Fatalf("past the per-file limit: %v, want an ExceededError of 48 MiB", err)
	}
	if a.Charge(0) == nil {
		t.Fatal("a refused account accepts charges again")
	}
}

func TestSharedPartIsHeldByOneFileAtATime(t *testing.T) {
	p := New(Config{Total: 64 << 20, Workers: 2, MaxWait: time.Millisecond})
	a, b := p.Account(), p.Account()
	if err := a.Charge(20 << 20); err != nil { // past its own 16 MiB
		t.Fatal(err)
	}
	if err := b.Charge(16 << 20); err != nil {
		t.Fatalf("within its own part, a file must not wait: %v", err)
	}
	err := b.Charge(1)
	var ex *ExceededError
	if !errors.As(err, &ex) || !ex.Wait {
		t.Fatalf("second file into the shared part: %v, want a wait refusal", err)
	}
	a.Close()
	c := p.Account()
	defer c.Close()
	if err := c.Charge(40 << 20); err != nil {
		t.Fatalf("after the first file closed, the shared part is free again: %v", err)
	}
}

func TestWaiterProceedsWhenTheSharedPartIsGivenBack(t *testing.T) {
	p := New(Config{Total: 64 << 20, Workers: 2})
	a, b := p.Account(), p.Account()
	if err := a.Charge(30 << 20); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var berr error
	wg.Add(1)
	go func() { defer wg.Done(); berr = b.Charge(30 << 20) }()
	a.Close()
	wg.Wait()
	if berr != nil {
		t.Fatalf("the waiting file was refused: %v", berr)
	}
	b.Close()
	b.Close() // twice is harmless
	var nilAcct *Account
	if nilAcct.Charge(1<<40) != nil || nilAcct.Used() != 0 {
		t.Fatal("a nil account must charge nothing")
	}
}
