//! Backward frees what forward kept once its last use is past: when an early op's backward
//! runs, the values and saved tensors of every op after it are already gone. Measured with a
//! global allocator that counts the bytes alive (this test file's own binary).

use microlm::{Tape, Tensor};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
/// LIVE as the probe op's backward saw it.
static SEEN: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; we only count.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const MB: usize = 1 << 20;

#[test]
fn backward_frees_each_value_once_its_consumers_are_done() {
    let n = MB / 4; // one value = 1 MB of f32
    let base = LIVE.load(Ordering::Relaxed);
    let mut tape = Tape::new();
    let x = tape.input(Tensor::from_elem(vec![n], 1.0));
    // An identity op whose backward records how many bytes are alive when it runs: by then
    // backward has passed all ten ops after it.
    let xv = tape.value(x).to_owned();
    let probe = tape.record("probe", xv, &[x], |g| {
        SEEN.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
        vec![g]
    });
    let mut y = probe;
    for _ in 0..10 {
        y = tape.mul_scalar(y, 1.5); // 1 MB each, kept by the tape
    }
    let loss = tape.sum(y, &[0], false);
    let forward = LIVE.load(Ordering::Relaxed) - base;
    assert!(
        forward >= 12 * MB,
        "forward keeps x, the probe and 10 products: {forward} bytes"
    );
    let grads = tape.backward(loss);
    let seen = SEEN.load(Ordering::Relaxed) - base;
    // Alive then: x, the probe's value and the gradient handed to it (3 MB), and small change.
    // Keeping every value until the tape is dropped would make it 12 MB or more.
    assert!(
        seen < 4 * MB,
        "{seen} bytes alive at the probe's backward (forward kept {forward})"
    );
    // The gradient itself is still right: d(1.5^10 x)/dx.
    let want = 1.5f32.powi(10);
    assert!(grads.wrt(x).unwrap().iter().all(|&g| (g - want).abs() <= 1e-6 * want));
}
