//! Handing freed heap memory back to the operating system, for event loops that held a lot of
//! buffered bytes under pressure and hold little once it is over.
//!
//! # Ground rules
//! - Freeing a buffer returns it to the allocator; whether the allocator returns it to the OS
//!   is its own business. glibc keeps freed memory in its arenas (its mmap threshold grows
//!   after large frees), so a process that once buffered a gigabyte can keep that RSS for
//!   good. `malloc_trim(0)` asks it to give back what is free.
//! - Call it rarely (when a pressure episode has ended): it walks the arenas.

/// Asks the allocator to return free heap memory to the OS. Returns whether anything was
/// released; always `false` where the allocator offers no such call (not glibc).
pub fn release_free_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes a plain integer, touches only the allocator's own free
        // lists under its own locks, and is safe to call from any thread at any time.
        unsafe { libc::malloc_trim(0) != 0 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releasing_after_freeing_does_not_disturb_live_memory() {
        let keep = vec![7u8; 1024];
        let big: Vec<Vec<u8>> = (0..64).map(|_| vec![1u8; 64 * 1024]).collect();
        drop(big);
        let _ = release_free_memory();
        assert!(keep.iter().all(|&b| b == 7));
    }
}
