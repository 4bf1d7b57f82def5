//! A small deterministic random source for the tests that draw what they do (the fault
//! suite's kill points and delays, the corpus' mutations): the same seed replays the same run.

use std::time::Duration;

/// xorshift64, seeded through splitmix64 so that near seeds (7 and 8) differ.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Self((z ^ (z >> 31)).max(1))
    }

    pub fn draw(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.draw() % n.max(1) as u64) as usize
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// One of `items`, `None` when there is none.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            items.get(self.below(items.len()))
        }
    }

    /// A duration from zero up to `max`, in whole milliseconds.
    pub fn duration(&mut self, max: Duration) -> Duration {
        let millis = usize::try_from(max.as_millis()).unwrap_or(usize::MAX - 1);
        Duration::from_millis(self.below(millis + 1) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_replay_from_the_seed_and_spread() {
        let draw = |seed| {
            let mut rng = Rng::new(seed);
            (0..1000).map(|_| rng.below(3)).collect::<Vec<_>>()
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
        let seven = draw(7);
        for k in 0..3 {
            let count = seven.iter().filter(|v| **v == k).count();
            assert!(count > 250, "{k}: {count}");
        }
        let mut rng = Rng::new(0);
        let max = Duration::from_millis(500);
        assert!((0..1000).all(|_| rng.duration(max) <= max));
        assert_eq!(rng.pick::<u8>(&[]), None);
    }
}
