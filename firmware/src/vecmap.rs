//! [`VecMap`]: a map kept as a vector of pairs sorted by key — a binary search to find,
//! a move of the pairs above to insert or remove. For the daemon's small tables (next
//! hops, per-client session counts, the inbound guard's view of routes), where the size
//! is bounded by the configuration or by `smtp.max-sessions`: std's `HashMap` would bring
//! SipHash and a hash table's code for each key and value type, which costs flash on a
//! router, and buys nothing at these sizes.

use std::borrow::Borrow;

/// A map as a vector of `(key, value)` sorted by key.
#[derive(Clone, Debug)]
pub struct VecMap<K, V>(Vec<(K, V)>);

impl<K, V> Default for VecMap<K, V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<K: Ord, V> VecMap<K, V> {
    /// An empty map with room for `n` pairs.
    pub fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n))
    }

    fn find<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.0.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    /// The value of `key`.
    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|i| &self.0[i].1)
    }

    /// The value of `key`, to change.
    pub fn get_mut<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|i| &mut self.0[i].1)
    }

    /// The value of `key`, inserted from `make` when there is none.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let i = match self.find(&key) {
            Ok(i) => i,
            Err(i) => {
                self.0.insert(i, (key, make()));
                i
            }
        };
        &mut self.0[i].1
    }

    /// Sets `key` to `value`; the value it replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    /// A map of `pairs` in any order; of pairs with equal keys the last stays.
    pub fn from_pairs(mut pairs: Vec<(K, V)>) -> Self {
        pairs.reverse();
        pairs.sort_by(|a, b| a.0.cmp(&b.0)); // stable: the last given comes first
        pairs.dedup_by(|later, first| later.0 == first.0);
        Self(pairs)
    }

    /// Removes `key`; its value.
    pub fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|i| self.0.remove(i).1)
    }
}

impl<K, V> VecMap<K, V> {
    /// Keeps the pairs for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.0.retain_mut(|(k, v)| keep(k, v));
    }

    /// The pairs, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// Whether `key` is there.
    pub fn contains_key<Q: Ord + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        K: Ord,
    {
        self.find(key).is_ok()
    }

    /// The values, in key order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.0.iter().map(|(_, v)| v)
    }

    /// How many pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Removes every pair.
    pub fn clear(&mut self) {
        self.0.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_a_map() {
        let mut m: VecMap<String, u32> = VecMap::default();
        assert_eq!(m.insert("b".into(), 2), None);
        assert_eq!(m.insert("a".into(), 1), None);
        assert_eq!(m.insert("c".into(), 3), None);
        assert_eq!(m.insert("b".into(), 20), Some(2));
        assert_eq!(m.get("b"), Some(&20));
        assert_eq!(m.get("z"), None);
        *m.get_or_insert_with("d".into(), || 0) += 4;
        *m.get_or_insert_with("d".into(), || 0) += 4;
        assert_eq!(m.values().copied().collect::<Vec<_>>(), [1, 20, 3, 8]);
        assert_eq!(m.remove("a"), Some(1));
        assert_eq!(m.remove("a"), None);
        *m.get_mut("c").unwrap() = 30;
        m.retain(|k, _| k != "b");
        assert_eq!(m.values().copied().collect::<Vec<_>>(), [30, 8]);
        assert_eq!(m.len(), 2);
        m.clear();
        assert!(m.is_empty());
        let m = VecMap::from_pairs(vec![(3, 'a'), (1, 'b'), (3, 'c')]);
        assert_eq!(m.iter().collect::<Vec<_>>(), [(&1, &'b'), (&3, &'c')]);
        assert!(m.contains_key(&1) && !m.contains_key(&2));
    }
}
