//! Large buffers: market data copied in and per-bar records. Both are touched once, front to
//! back, right after allocation, so their cost is mostly page faults; asking Linux for
//! transparent huge pages (as numpy does for its arrays) takes one fault per 2 MiB instead of
//! one per 4 KiB.

/// An empty vector with room for `n` values, backed by huge pages where the system allows.
pub fn with_capacity<T>(n: usize) -> Vec<T> {
    let v: Vec<T> = Vec::with_capacity(n);
    advise_huge(
        v.as_ptr() as usize,
        n.saturating_mul(std::mem::size_of::<T>()),
    );
    v
}

/// A copy of `src` in fresh memory (see [`with_capacity`]).
pub fn copy_to_vec<T: Copy>(src: &[T]) -> Vec<T> {
    let mut v = with_capacity(src.len());
    v.extend_from_slice(src);
    v
}

#[cfg(target_os = "linux")]
fn advise_huge(start: usize, bytes: usize) {
    const HUGE: usize = 2 << 20;
    if bytes < 2 * HUGE {
        return;
    }
    let aligned = (start + HUGE - 1) & !(HUGE - 1);
    let len = (start + bytes).saturating_sub(aligned) & !(HUGE - 1);
    if len > 0 {
        // SAFETY: [aligned, aligned + len) lies inside an allocation just made by the caller;
        // the advice changes how pages are backed, never their contents. Failure is harmless
        // (small pages are used), so the result is ignored.
        unsafe {
            libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge(_start: usize, _bytes: usize) {}

#[cfg(test)]
mod tests {
    #[test]
    fn copies_exactly() {
        let src: Vec<f64> = (0..1_000_000).map(|i| i as f64 * 0.5).collect();
        assert_eq!(super::copy_to_vec(&src), src);
        let v: Vec<u8> = super::with_capacity(10);
        assert!(v.is_empty() && v.capacity() >= 10);
    }
}
