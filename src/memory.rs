//! Keeping freed memory for reuse.
//!
//! A training step allocates and frees the same large buffers every step. glibc's allocator
//! returns a freed block of 128 KiB or more straight to the kernel (`munmap`), so the next step's
//! allocation of that size gets fresh pages, and the kernel zeroes each on its first touch: a page
//! fault per 4 KiB. On the toy encoder that was about a tenth of the step. Raising glibc's mmap
//! and trim thresholds makes it keep freed blocks in its heap and hand them out again. The peak
//! memory is unchanged (it is the same buffers); the process just does not give it back between
//! steps.

/// Ask glibc to keep freed memory for reuse (`mallopt(M_MMAP_THRESHOLD)` and
/// `mallopt(M_TRIM_THRESHOLD)` at 1 GiB). Does nothing on other platforms. Called by
/// [`init_threads_from_env`](crate::init_threads_from_env).
pub fn reuse_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_THRESHOLD: i32 = -3;
        // SAFETY: mallopt only changes allocator tuning parameters.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 1 << 30);
            mallopt(M_TRIM_THRESHOLD, 1 << 30);
        }
    }
}
