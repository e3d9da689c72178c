//! An ordered map kept as short sorted runs ("chunks") of at most
//! [`CHUNK_LEN`] entries, indexed by a B-tree on each run's first key.
//!
//! Made for a hot SKU's open holds and their expiry order: keys arrive
//! mostly in ascending order (hold ids are issued in sequence, expiry times
//! are "now + ttl"). A `HashMap` rehashes every entry when it outgrows its
//! table; a `BTreeMap` never does, but ascending inserts leave its leaves a
//! little over half full. Here an ascending insert into a full run starts a
//! new one and leaves the full one full, so memory is close to the entries'
//! own size. Every change costs O(log n) plus moving at most one run
//! (`CHUNK_LEN` entries): there is no step that touches all entries.

use std::collections::BTreeMap;

/// Entries per run at most. Small enough that moving a run is cheap (an
/// insert or remove in the middle of one moves at most this many
/// entries), large enough that the index is small next to the entries.
pub const CHUNK_LEN: usize = 64;

#[derive(Clone)]
pub struct ChunkMap<K, V> {
    /// Runs by their first key: every run is non-empty and sorted, and
    /// every key of a run is below the next run's first key.
    runs: BTreeMap<K, Vec<(K, V)>>,
    len: usize,
}

impl<K: Ord + Copy, V> Default for ChunkMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Ord + Copy, V> ChunkMap<K, V> {
    pub fn new() -> Self {
        Self {
            runs: BTreeMap::new(),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first key of the run that holds (or would hold) `k`.
    fn run_of(&self, k: &K) -> Option<K> {
        self.runs
            .range(..=*k)
            .next_back()
            .or_else(|| self.runs.iter().next())
            .map(|(first, _)| *first)
    }

    pub fn get(&self, k: &K) -> Option<&V> {
        let (_, run) = self.runs.range(..=*k).next_back()?;
        let i = run.binary_search_by(|(x, _)| x.cmp(k)).ok()?;
        Some(&run[i].1)
    }

    pub fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        let (_, run) = self.runs.range_mut(..=*k).next_back()?;
        let i = run.binary_search_by(|(x, _)| x.cmp(k)).ok()?;
        Some(&mut run[i].1)
    }

    pub fn contains_key(&self, k: &K) -> bool {
        self.get(k).is_some()
    }

    /// Inserts, returning the value `k` had.
    pub fn insert(&mut self, k: K, v: V) -> Option<V> {
        let Some(first) = self.run_of(&k) else {
            self.runs.insert(k, vec![(k, v)]);
            self.len = 1;
            return None;
        };
        let Some(run) = self.runs.get_mut(&first) else {
            unreachable!("run_of returns a run's key");
        };
        let at = match run.binary_search_by(|(x, _)| x.cmp(&k)) {
            Ok(i) => return Some(std::mem::replace(&mut run[i].1, v)),
            Err(at) => at,
        };
        self.len += 1;
        if run.len() < CHUNK_LEN {
            run.insert(at, (k, v));
            if at == 0 {
                // Below every key: the first run gets a new first key.
                let run = self.runs.remove(&first).unwrap_or_default();
                self.runs.insert(k, run);
            }
            return None;
        }
        if at == CHUNK_LEN {
            // Past the end of a full run (the ascending case): a new run,
            // the full one stays full.
            self.runs.insert(k, vec![(k, v)]);
            return None;
        }
        let mut right = run.split_off(CHUNK_LEN / 2);
        if at <= CHUNK_LEN / 2 {
            run.insert(at, (k, v));
            if at == 0 {
                let left = self.runs.remove(&first).unwrap_or_default();
                self.runs.insert(k, left);
            }
        } else {
            right.insert(at - CHUNK_LEN / 2, (k, v));
        }
        self.runs.insert(right[0].0, right);
        None
    }

    pub fn remove(&mut self, k: &K) -> Option<V> {
        let first = *self.runs.range(..=*k).next_back()?.0;
        let run = self.runs.get_mut(&first)?;
        let i = run.binary_search_by(|(x, _)| x.cmp(k)).ok()?;
        let (_, v) = run.remove(i);
        self.len -= 1;
        if run.len() * 4 <= run.capacity() {
            run.shrink_to(run.len() * 2);
        }
        let n = run.len();
        let small = n < CHUNK_LEN / 4;
        if !small && i > 0 {
            return Some(v);
        }
        let mut run = self.runs.remove(&first).unwrap_or_default();
        let Some(&(new_first, _)) = run.first() else {
            return Some(v);
        };
        // A small run joins a neighbour when both fit in half a run, so
        // releases scattered over many runs do not leave many tiny ones.
        if small {
            if let Some((_, prev)) = self.runs.range_mut(..new_first).next_back() {
                if prev.len() + n <= CHUNK_LEN / 2 {
                    prev.append(&mut run);
                    return Some(v);
                }
            }
            let next = self
                .runs
                .range(new_first..)
                .next()
                .map(|(k, r)| (*k, r.len()));
            if let Some((next, _)) = next.filter(|(_, m)| n + m <= CHUNK_LEN / 2) {
                let mut tail = self.runs.remove(&next).unwrap_or_default();
                run.append(&mut tail);
            }
        }
        self.runs.insert(new_first, run);
        Some(v)
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.runs.values().flatten().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.iter().map(|(_, v)| v)
    }

    /// Runs in use, for tests of the layout.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }
}

impl<K: Ord + Copy, V: PartialEq> PartialEq for ChunkMap<K, V> {
    /// Equal entries; how they are cut into runs does not matter.
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<K: Ord + Copy, V: Eq> Eq for ChunkMap<K, V> {}

impl<K: Ord + Copy + std::fmt::Debug, V: std::fmt::Debug> std::fmt::Debug for ChunkMap<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<'a, K: Ord + Copy, V> IntoIterator for &'a ChunkMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Box<dyn Iterator<Item = (&'a K, &'a V)> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u64),
        /// The next key above every key so far (ids, "now + ttl").
        Append,
        Remove(u64),
        /// Removes the smallest key (holds expiring oldest first).
        PopFirst,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            2 => (0u64..400).prop_map(Op::Insert),
            6 => Just(Op::Append),
            3 => (0u64..400).prop_map(Op::Remove),
            2 => Just(Op::PopFirst),
        ]
    }

    fn check(m: &ChunkMap<u64, u64>, model: &BTreeMap<u64, u64>) -> Result<(), TestCaseError> {
        prop_assert_eq!(m.len(), model.len());
        prop_assert!(m
            .iter()
            .map(|(k, v)| (*k, *v))
            .eq(model.iter().map(|(k, v)| (*k, *v))));
        for (first, run) in &m.runs {
            prop_assert!(!run.is_empty() && run.len() <= CHUNK_LEN);
            prop_assert_eq!(run[0].0, *first);
            prop_assert!(run.windows(2).all(|w| w[0].0 < w[1].0));
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
        #[test]
        fn behaves_like_a_btreemap(ops in prop::collection::vec(op(), 1..600)) {
            let mut m = ChunkMap::new();
            let mut model = BTreeMap::new();
            let mut next = 400u64;
            for (i, o) in ops.into_iter().enumerate() {
                let v = i as u64;
                match o {
                    Op::Insert(k) => prop_assert_eq!(m.insert(k, v), model.insert(k, v)),
                    Op::Append => {
                        next += 1;
                        prop_assert_eq!(m.insert(next, v), model.insert(next, v));
                    }
                    Op::Remove(k) => prop_assert_eq!(m.remove(&k), model.remove(&k)),
                    Op::PopFirst => {
                        let k = model.keys().next().copied();
                        if let Some(k) = k {
                            prop_assert_eq!(m.remove(&k), model.remove(&k));
                        }
                    }
                }
                check(&m, &model)?;
                for k in [0, 7, 399, next] {
                    prop_assert_eq!(m.get(&k), model.get(&k));
                }
            }
        }
    }

    #[test]
    fn ascending_inserts_fill_runs() {
        let mut m = ChunkMap::new();
        for k in 0..10_000u64 {
            m.insert(k, ());
        }
        assert_eq!(m.runs(), 10_000usize.div_ceil(CHUNK_LEN));
        assert!(m.runs.values().all(|r| r.capacity() <= CHUNK_LEN));
    }

    #[test]
    fn scattered_removals_leave_no_crowd_of_tiny_runs() {
        let mut m = ChunkMap::new();
        for k in 0..10_000u64 {
            m.insert(k, ());
        }
        // Keep one key in ten.
        for k in (0..10_000u64).filter(|k| k % 10 != 0) {
            m.remove(&k);
        }
        assert_eq!(m.len(), 1_000);
        assert!(m.runs() <= 1_000 / (CHUNK_LEN / 4), "{} runs", m.runs());
    }
}
