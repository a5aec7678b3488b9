//! Large buffers: market data copied in and per-bar records. Both are touched once, front to
//! back, right after allocation, so their cost is mostly page faults; asking Linux for
//! transparent huge pages (as numpy does for its arrays) takes one fault per 2 MiB instead of
//! one per 4 KiB. And [`Chunked`], the list that the orders, fills and trades of a run grow
//! in without ever being copied.

use std::ops::{Index, IndexMut};

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

/// Bytes per chunk of a [`Chunked`] list (rounded down to a power of two of elements).
const CHUNK_BYTES: usize = 1 << 20;

/// A list that grows a chunk at a time and never moves what it holds.
///
/// A `Vec` that doubles copies its contents into a buffer twice as large, so a run that places
/// tens of thousands of orders holds, at its end, up to twice their size, plus the freed
/// smaller buffers the allocator keeps (measured: 39 MiB for a 1M-bar run whose curves and
/// records take 29). Here only the first chunk grows like a `Vec`; later chunks are allocated
/// at their final size, so what is held is what is stored plus at most one partly used chunk.
#[derive(Clone, Debug, PartialEq)]
pub struct Chunked<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Self {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Chunked<T> {
    /// log2 of the elements per chunk (at least one element).
    const SHIFT: u32 = {
        let per = CHUNK_BYTES
            / if std::mem::size_of::<T>() == 0 {
                1
            } else {
                std::mem::size_of::<T>()
            };
        if per == 0 {
            0
        } else {
            per.ilog2()
        }
    };
    const MASK: usize = (1 << Self::SHIFT) - 1;

    pub fn new() -> Self {
        Self::default()
    }
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Append `v`; its index is the previous `len()`.
    #[inline]
    pub fn push(&mut self, v: T) {
        match self.chunks.last_mut() {
            Some(c) if c.len() < 1 << Self::SHIFT => c.push(v),
            last => {
                // The first chunk grows on demand (most runs hold a few records); every later
                // one is made whole at once.
                let mut c = if last.is_none() {
                    Vec::new()
                } else {
                    Vec::with_capacity(1 << Self::SHIFT)
                };
                c.push(v);
                self.chunks.push(c);
            }
        }
        self.len += 1;
    }
    #[inline]
    pub fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i >> Self::SHIFT)?.get(i & Self::MASK)
    }
    #[inline]
    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.chunks
            .get_mut(i >> Self::SHIFT)?
            .get_mut(i & Self::MASK)
    }
    pub fn first(&self) -> Option<&T> {
        self.get(0)
    }
    pub fn last(&self) -> Option<&T> {
        self.chunks.last()?.last()
    }
    pub fn last_mut(&mut self) -> Option<&mut T> {
        self.chunks.last_mut()?.last_mut()
    }
    /// Everything, in the order pushed.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + Clone {
        self.chunks.iter().flatten()
    }
    pub fn iter_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut T> {
        self.chunks.iter_mut().flatten()
    }
    /// The contiguous runs the elements are stored in, in order.
    pub fn chunks(&self) -> impl Iterator<Item = &[T]> {
        self.chunks.iter().map(|c| c.as_slice())
    }
    pub fn to_vec(&self) -> Vec<T>
    where
        T: Clone,
    {
        let mut v = Vec::with_capacity(self.len);
        for c in &self.chunks {
            v.extend_from_slice(c);
        }
        v
    }
}

impl<T> Index<usize> for Chunked<T> {
    type Output = T;
    #[inline]
    fn index(&self, i: usize) -> &T {
        &self.chunks[i >> Self::SHIFT][i & Self::MASK]
    }
}

impl<T> IndexMut<usize> for Chunked<T> {
    #[inline]
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut self.chunks[i >> Self::SHIFT][i & Self::MASK]
    }
}

impl<'a, T> IntoIterator for &'a Chunked<T> {
    type Item = &'a T;
    type IntoIter = std::iter::Flatten<std::slice::Iter<'a, Vec<T>>>;
    fn into_iter(self) -> Self::IntoIter {
        self.chunks.iter().flatten()
    }
}

impl<T> FromIterator<T> for Chunked<T> {
    fn from_iter<I: IntoIterator<Item = T>>(it: I) -> Self {
        let mut c = Self::new();
        for v in it {
            c.push(v);
        }
        c
    }
}

impl<T: PartialEq> PartialEq<[T]> for Chunked<T> {
    fn eq(&self, other: &[T]) -> bool {
        self.len == other.len() && self.iter().eq(other.iter())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn copies_exactly() {
        let src: Vec<f64> = (0..1_000_000).map(|i| i as f64 * 0.5).collect();
        assert_eq!(super::copy_to_vec(&src), src);
        let v: Vec<u8> = super::with_capacity(10);
        assert!(v.is_empty() && v.capacity() >= 10);
    }

    #[test]
    fn chunked_is_a_list_across_chunk_boundaries() {
        // 96-byte elements: 8192 per chunk, so 20_000 span three chunks.
        type Big = [u64; 12];
        let mut c: super::Chunked<Big> = super::Chunked::new();
        assert!(c.is_empty() && c.first().is_none() && c.last().is_none());
        let n = 20_000u64;
        for i in 0..n {
            c.push([i; 12]);
        }
        assert_eq!(c.len(), n as usize);
        assert_eq!(c.chunks().count(), 3);
        assert_eq!(c.chunks().map(<[Big]>::len).sum::<usize>(), n as usize);
        for i in [0, 1, 8191, 8192, 8193, 16383, 16384, 19_999] {
            assert_eq!(c[i][0], i as u64);
            assert_eq!(c.get(i).unwrap()[11], i as u64);
        }
        assert!(c.get(n as usize).is_none());
        assert_eq!(c.last().unwrap()[0], n - 1);
        c[8192][0] = 7;
        *c.get_mut(9000).unwrap() = [1; 12];
        c.last_mut().unwrap()[0] = 3;
        let v = c.to_vec();
        assert_eq!(v.len(), n as usize);
        assert!(c.iter().zip(&v).all(|(a, b)| a == b));
        assert_eq!(c.iter().next_back().unwrap()[0], 3);
        assert!(c == *v.as_slice());
        let d: super::Chunked<Big> = v.iter().copied().collect();
        assert_eq!(d, c);
        // Chunks after the first are allocated whole and never move.
        let p = &c[8192] as *const Big;
        c.push([0; 12]);
        assert_eq!(p, &c[8192] as *const Big);
    }
}
