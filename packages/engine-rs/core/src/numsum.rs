//! numpy's float64 sum (`np.add.reduce` of a contiguous array), reproduced bit for bit, over
//! a slice or streamed one value at a time. A figure the engine streams instead of keeping a
//! per-bar series (a sweep's exposure) is then the one numpy computes from the series.
//!
//! numpy sums pairwise: a run of more than 128 values is cut in two at half its length rounded
//! down to a multiple of 8; a run of 8 to 128 values is summed by eight accumulators (one per
//! position modulo 8, combined as ((0+1)+(2+3))+((4+5)+(6+7))) followed by the remainder in
//! order; a shorter run in order from -0.0. The whole is added to the reduction's identity, 0.0.

const LEAF: usize = 128;

fn half(m: usize) -> usize {
    let h = m / 2;
    h - h % 8
}

fn leaf_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        return a.iter().fold(-0.0, |s, &x| s + x);
    }
    let mut r = [0.0; 8];
    r.copy_from_slice(&a[..8]);
    let whole = n - n % 8;
    let mut i = 8;
    while i < whole {
        for (j, rj) in r.iter_mut().enumerate() {
            *rj += a[i + j];
        }
        i += 8;
    }
    let mut s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for &x in &a[whole..] {
        s += x;
    }
    s
}

fn pairwise(a: &[f64]) -> f64 {
    if a.len() <= LEAF {
        leaf_sum(a)
    } else {
        let h = half(a.len());
        pairwise(&a[..h]) + pairwise(&a[h..])
    }
}

/// numpy's sum of `a` (0.0 when empty).
pub fn sum(a: &[f64]) -> f64 {
    if a.is_empty() {
        0.0
    } else {
        0.0 + pairwise(a)
    }
}

/// numpy's sum of `n` values pushed one at a time, holding at most 128 of them.
#[derive(Clone, Debug)]
pub struct StreamSum {
    n: usize,
    seen: usize,
    /// The internal nodes above the leaf being filled: the size of each one's right child,
    /// and its left child's sum once that is known.
    path: Vec<(usize, Option<f64>)>,
    leaf: Vec<f64>,
    want: usize,
    done: Option<f64>,
}

impl StreamSum {
    pub fn new(n: usize) -> Self {
        let mut s = Self {
            n,
            seen: 0,
            path: Vec::new(),
            leaf: Vec::with_capacity(LEAF),
            want: 0,
            done: None,
        };
        if n > 0 {
            s.descend(n);
        }
        s
    }

    fn descend(&mut self, mut m: usize) {
        while m > LEAF {
            let h = half(m);
            self.path.push((m - h, None));
            m = h;
        }
        self.want = m;
    }

    #[inline]
    pub fn push(&mut self, x: f64) {
        self.seen += 1;
        if self.seen > self.n {
            return;
        }
        self.leaf.push(x);
        if self.leaf.len() < self.want {
            return;
        }
        let mut v = leaf_sum(&self.leaf);
        self.leaf.clear();
        loop {
            match self.path.last_mut() {
                None => {
                    self.done = Some(v);
                    return;
                }
                Some((right, left @ None)) => {
                    *left = Some(v);
                    let r = *right;
                    self.descend(r);
                    return;
                }
                Some((_, Some(l))) => {
                    v += *l; // left + right: IEEE addition commutes, bit for bit
                    self.path.pop();
                }
            }
        }
    }

    /// Push `x` `k` times (a stretch of equal values fills the leaves a run at a time).
    pub fn push_repeated(&mut self, x: f64, mut k: usize) {
        while k > 0 && self.seen < self.n {
            let take = k.min(self.want - self.leaf.len());
            if take == 1 {
                self.push(x);
            } else {
                // All but the last of the run: the last goes through `push`, which sums a
                // full leaf.
                self.leaf.extend(std::iter::repeat_n(x, take - 1));
                self.seen += take - 1;
                self.push(x);
            }
            k -= take;
        }
        // Past the planned length: counted, so that the total says the count is wrong.
        self.seen += k;
    }

    /// How many values have been pushed.
    pub fn count(&self) -> usize {
        self.seen
    }

    /// The sum once exactly `n` values have been pushed (None before, or after more).
    pub fn total(&self) -> Option<f64> {
        if self.seen != self.n {
            return None;
        }
        Some(self.done.map_or(0.0, |v| 0.0 + v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u64) -> Vec<f64> {
        // A wide range of magnitudes and signs, so that the order of additions shows.
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let m = ((x >> 11) as f64) / ((1u64 << 53) as f64) - 0.5;
                m * 10f64.powi(((x >> 3) % 12) as i32 - 4)
            })
            .collect()
    }

    #[test]
    fn streaming_equals_the_slice_sum() {
        for n in (0..300).chain([1000, 1023, 1024, 1025, 4097, 65_537, 100_003]) {
            let a = values(n, n as u64);
            let mut s = StreamSum::new(n);
            for (k, &x) in a.iter().enumerate() {
                assert!(n == 0 || k == 0 || s.total().is_none());
                s.push(x);
            }
            assert_eq!(
                s.total().map(f64::to_bits),
                Some(sum(&a).to_bits()),
                "n={n}"
            );
        }
    }

    #[test]
    fn the_tree_is_numpys() {
        // Values whose sum depends on the grouping: 1e16 absorbs a 1.0 added to it alone.
        let mut a = vec![1.0; 16];
        a[0] = 1e16;
        // Eight accumulators: accumulator 0 gets 1e16 + 1.0 (absorbed), the others 1 + 1.
        assert_eq!(sum(&a), 1e16 + 14.0);
        // Fewer than 8: in order from -0.0, then the identity 0.0 (so -0.0 sums to 0.0).
        assert_eq!(sum(&[-0.0, -0.0]).to_bits(), 0.0f64.to_bits());
        assert_eq!(sum(&[]), 0.0);
    }

    #[test]
    fn repeated_values_stream_as_single_ones() {
        let runs = [
            (0.5, 3),
            (0.0, 200),
            (1e-3, 129),
            (7.0, 1),
            (0.25, 1000),
            (0.0, 40),
        ];
        let n: usize = runs.iter().map(|r| r.1).sum();
        let (mut one, mut many) = (StreamSum::new(n), StreamSum::new(n));
        let mut all = Vec::new();
        for &(x, k) in &runs {
            for _ in 0..k {
                one.push(x);
                all.push(x);
            }
            many.push_repeated(x, k);
        }
        assert_eq!(many.total().map(f64::to_bits), Some(sum(&all).to_bits()));
        assert_eq!(one.total(), many.total());
        many.push_repeated(1.0, 2);
        assert_eq!(many.total(), None);
    }

    #[test]
    fn a_wrong_count_has_no_total() {
        let mut s = StreamSum::new(3);
        s.push(1.0);
        s.push(2.0);
        assert_eq!(s.total(), None);
        s.push(3.0);
        assert_eq!(s.total(), Some(6.0));
        s.push(4.0);
        assert_eq!(s.total(), None);
    }
}
