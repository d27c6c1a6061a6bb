//! Learned profiles of a baseline: tool mix, hour-of-day profile, and per tool the argument
//! key sets, sizes and value distributions. Every map is bounded by a constant (see the
//! `MAX_*` constants) so an adversary cannot grow memory without limit while a baseline is
//! being learned.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

use super::hash::FastState;
use super::welford::Welford;

/// Additive (Lidstone) smoothing used by every categorical profile.
pub const ALPHA: f64 = 0.5;
/// Distinct tools profiled per agent; further new tools share one "other" bucket.
pub const MAX_TOOLS: usize = 64;
/// Distinct argument key sets profiled per tool.
pub const MAX_KEYSETS: usize = 16;
/// Distinct argument keys profiled per tool.
pub const MAX_KEYS: usize = 32;
/// Distinct categorical values profiled per (tool, key); beyond this the key is treated as
/// free-form (high cardinality) and its values are no longer scored categorically.
pub const MAX_CATEGORIES: usize = 16;
/// A call with more top-level argument keys than this has the key set `["\0many"]`, and only
/// its first `MAX_ARG_KEYS` entries are scored.
pub const MAX_ARG_KEYS: usize = 32;
/// Keys longer than this (in code points), non-`str` keys and keys with lone surrogates are
/// all profiled under the key `"\0key"`.
pub const MAX_KEY_CHARS: usize = 64;
/// Strings up to this length (code points) are categorical values.
pub const MAX_CATEGORY_CHARS: usize = 32;
/// Nodes visited when sizing nested arguments; the rest is estimated (8 per item).
pub const MAX_SIZE_NODES: i64 = 256;
/// Nesting depth walked when sizing arguments.
pub const MAX_SIZE_DEPTH: usize = 8;
/// Floor of a per-tool / per-key standard deviation (log2 units) when standardising a value.
pub const SCALE_FLOOR: f64 = 0.5;

/// Key token for keys that are not short valid `str`.
pub const OTHER_KEY: &str = "\u{0}key";
/// Key-set token for calls with more than `MAX_ARG_KEYS` keys.
pub const MANY_KEYS: &str = "\u{0}many";

/// Kinds of argument values.
pub const KIND_NUMBER: usize = 0;
/// `str`
pub const KIND_TEXT: usize = 1;
/// `bytes` / `bytearray`
pub const KIND_BYTES: usize = 2;
/// `bool`
pub const KIND_BOOL: usize = 3;
/// `None`
pub const KIND_NONE: usize = 4;
/// `dict` / `list` / `tuple`
pub const KIND_CONTAINER: usize = 5;
/// Anything else.
pub const KIND_OTHER: usize = 6;
/// Number of kinds.
pub const N_KINDS: usize = 7;

/// `-log2((c + ALPHA) / den)`, computed as `log2(den) - log2(c + ALPHA)`.
#[inline]
pub fn surprise_bits(count: u64, den: f64) -> f64 {
    den.log2() - (count as f64 + ALPHA).log2()
}

/// A bounded histogram of string categories with Lidstone-smoothed surprise.
#[derive(Clone, Debug, Default)]
pub struct Categorical {
    counts: HashMap<String, u64, FastState>,
    other: u64,
    total: u64,
    cap: usize,
}

impl Categorical {
    /// A histogram keeping at most `cap` distinct categories.
    pub fn new(cap: usize) -> Self {
        Self {
            counts: HashMap::default(),
            other: 0,
            total: 0,
            cap,
        }
    }

    /// Surprise of `key` in bits: `-log2((c + a) / (total + a * (K + 1)))` where K is the
    /// number of distinct categories held and c is the count of `key` (or of the shared
    /// "other" bucket when `key` is not held).
    #[inline]
    pub fn surprise(&self, key: &str) -> f64 {
        let c = self.counts.get(key).copied().unwrap_or(self.other);
        let den = self.total as f64 + ALPHA * (self.counts.len() as f64 + 1.0);
        surprise_bits(c, den)
    }

    /// Count one observation of `key`.
    #[inline]
    pub fn observe(&mut self, key: &str) {
        self.total += 1;
        if let Some(c) = self.counts.get_mut(key) {
            *c += 1;
        } else if self.counts.len() < self.cap {
            self.counts.insert(key.to_owned(), 1);
        } else {
            self.other += 1;
        }
    }

    /// Whether categories overflowed the cap.
    pub fn overflowed(&self) -> bool {
        self.other > 0
    }

    /// Total observations.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Whether `key` is held.
    pub fn contains(&self, key: &str) -> bool {
        self.counts.contains_key(key)
    }

    /// Held categories with their counts, sorted by name.
    pub fn entries(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self.counts.iter().map(|(k, c)| (k.clone(), *c)).collect();
        v.sort();
        v
    }

    /// Count in the shared "other" bucket.
    pub fn other(&self) -> u64 {
        self.other
    }

    /// Rebuild from saved parts.
    pub fn from_parts(cap: usize, entries: Vec<(String, u64)>, other: u64) -> Option<Self> {
        if entries.len() > cap {
            return None;
        }
        let mut counts = HashMap::with_capacity_and_hasher(entries.len(), FastState::new());
        let mut total = other;
        for (k, c) in entries {
            if c == 0 || counts.insert(k, c).is_some() {
                return None;
            }
            total = total.checked_add(c)?;
        }
        Some(Self {
            counts,
            other,
            total,
            cap,
        })
    }

    /// Add the counts of `other` (bounded by our cap).
    pub fn merge(&mut self, o: &Categorical) {
        for (k, c) in o.entries() {
            if let Some(x) = self.counts.get_mut(&k) {
                *x += c;
            } else if self.counts.len() < self.cap {
                self.counts.insert(k, c);
            } else {
                self.other += c;
            }
        }
        self.other += o.other;
        self.total += o.total;
    }
}

/// The features of one top-level argument value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ArgValue<'a> {
    /// A finite number, as `copysign(log2(1 + |x|), x)`.
    Number(f64),
    /// A non-finite float, as a categorical token.
    NonFinite(&'static str),
    /// A `str`: `log2(1 + len)` and, when short and valid UTF-8, the value itself.
    Text(f64, Option<&'a str>),
    /// `bytes`: `log2(1 + len)`.
    Bytes(f64),
    /// `bool`.
    Bool(bool),
    /// `None`.
    Null,
    /// A container: `log2(1 + size)`.
    Container(f64),
    /// Anything else.
    Other,
}

impl ArgValue<'_> {
    /// The kind index.
    pub fn kind(&self) -> usize {
        match self {
            ArgValue::Number(_) | ArgValue::NonFinite(_) => KIND_NUMBER,
            ArgValue::Text(..) => KIND_TEXT,
            ArgValue::Bytes(_) => KIND_BYTES,
            ArgValue::Bool(_) => KIND_BOOL,
            ArgValue::Null => KIND_NONE,
            ArgValue::Container(_) => KIND_CONTAINER,
            ArgValue::Other => KIND_OTHER,
        }
    }

    fn token(&self) -> Option<&str> {
        match self {
            ArgValue::NonFinite(t) => Some(t),
            ArgValue::Text(_, t) => *t,
            ArgValue::Bool(true) => Some("\u{0}True"),
            ArgValue::Bool(false) => Some("\u{0}False"),
            ArgValue::Null => Some("\u{0}None"),
            _ => None,
        }
    }

    fn magnitude(&self) -> Option<f64> {
        match self {
            ArgValue::Text(l, _) | ArgValue::Bytes(l) | ArgValue::Container(l) => Some(*l),
            _ => None,
        }
    }
}

/// The features of one call's arguments, extracted by the binding (or the reference twin).
#[derive(Clone, Debug, Default)]
pub struct CallArgs<'a> {
    /// `log2(1 + approximate size)` of the whole arguments mapping.
    pub log_size: f64,
    /// Sorted key tokens (or `[MANY_KEYS]`).
    pub keyset: Vec<&'a str>,
    /// `(key token, value)` for the first `MAX_ARG_KEYS` entries, in mapping order.
    pub entries: Vec<(&'a str, ArgValue<'a>)>,
}

/// Signed standardised distance `(x - mean) / max(std, SCALE_FLOOR)`.
#[inline]
pub fn standardise(w: &Welford, x: f64) -> f64 {
    (x - w.mean()) / w.std_dev().max(SCALE_FLOOR)
}

/// Profile of one argument key of one tool.
#[derive(Clone, Debug)]
pub struct KeyModel {
    /// Observations per kind.
    pub kinds: [u64; N_KINDS],
    /// Numbers (log-scaled).
    pub num: Welford,
    /// Lengths / sizes (log-scaled) of text, bytes and containers.
    pub len: Welford,
    /// Categorical values (short strings, booleans, None, non-finite numbers).
    pub cats: Categorical,
}

impl Default for KeyModel {
    fn default() -> Self {
        Self {
            kinds: [0; N_KINDS],
            num: Welford::new(),
            len: Welford::new(),
            cats: Categorical::new(MAX_CATEGORIES),
        }
    }
}

impl KeyModel {
    /// Observations of this key.
    pub fn count(&self) -> u64 {
        self.kinds.iter().sum()
    }

    /// Anomaly score of `v` against this profile: the largest of the kind surprise (bits), the
    /// standardised distance of the number or length, and the categorical surprise (bits).
    pub fn score(&self, v: &ArgValue<'_>) -> f64 {
        let n = self.count();
        let mut s = surprise_bits(self.kinds[v.kind()], n as f64 + ALPHA * N_KINDS as f64);
        if let ArgValue::Number(t) = v {
            if self.num.count() >= 2 {
                s = s.max(standardise(&self.num, *t).abs());
            }
        }
        if let Some(l) = v.magnitude() {
            if self.len.count() >= 2 {
                s = s.max(standardise(&self.len, l).abs());
            }
        }
        if let Some(tok) = v.token() {
            if !self.cats.overflowed() {
                s = s.max(self.cats.surprise(tok));
            }
        }
        s
    }

    /// Learn `v`.
    pub fn observe(&mut self, v: &ArgValue<'_>) {
        self.kinds[v.kind()] += 1;
        if let ArgValue::Number(t) = v {
            self.num.push(*t);
        }
        if let Some(l) = v.magnitude() {
            self.len.push(l);
        }
        if let Some(tok) = v.token() {
            if !self.cats.overflowed() {
                self.cats.observe(tok);
            }
        }
    }

    /// Fold another profile of the same key in.
    pub fn merge(&mut self, o: &KeyModel) {
        for (a, b) in self.kinds.iter_mut().zip(o.kinds.iter()) {
            *a += b;
        }
        self.num.merge(&o.num);
        self.len.merge(&o.len);
        self.cats.merge(&o.cats);
    }
}

/// One key set of a tool with its count.
#[derive(Clone, Debug)]
pub struct KeysetEntry {
    fingerprint: u64,
    /// Sorted key tokens.
    pub keys: Vec<String>,
    /// Observations.
    pub count: u64,
}

/// Profile of one tool: its latencies and its arguments.
#[derive(Clone, Debug)]
pub struct ToolModel {
    /// `log2(1 + latency_ms)` of its calls with a latency.
    pub latency: Welford,
    /// `log2(1 + size)` of the arguments.
    pub size: Welford,
    /// Key sets seen (bounded by `MAX_KEYSETS`).
    pub keysets: Vec<KeysetEntry>,
    /// Key-set observations that did not fit.
    pub keyset_other: u64,
    /// Calls profiled with arguments.
    pub calls: u64,
    /// Per-key profiles (bounded by `MAX_KEYS`).
    pub keys: HashMap<String, KeyModel, FastState>,
}

impl Default for ToolModel {
    fn default() -> Self {
        Self {
            latency: Welford::new(),
            size: Welford::new(),
            keysets: Vec::new(),
            keyset_other: 0,
            calls: 0,
            keys: HashMap::default(),
        }
    }
}

/// Order-sensitive 64-bit fingerprint of a sorted key list under the engine's keyed hasher.
pub fn keyset_fingerprint<S: BuildHasher, K: AsRef<str>>(hasher: &S, keys: &[K]) -> u64 {
    let mut h = hasher.build_hasher();
    keys.len().hash(&mut h);
    for k in keys {
        k.as_ref().hash(&mut h);
    }
    h.finish()
}

/// Per-call argument features scored against a tool profile.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ArgScores {
    /// Surprise of the key set (bits).
    pub keys: f64,
    /// Standardised argument size, when the profile has at least two sizes.
    pub size: Option<f64>,
    /// Largest per-key score over keys the profile knows, when there is one.
    pub values: Option<f64>,
}

impl ToolModel {
    fn find_keyset(&self, fp: u64, keys: &[&str]) -> Option<usize> {
        self.keysets.iter().position(|e| {
            e.fingerprint == fp
                && e.keys.len() == keys.len()
                && e.keys.iter().zip(keys).all(|(a, b)| a == b)
        })
    }

    /// Score a call's arguments against this profile (before learning them).
    pub fn score(&self, args: &CallArgs<'_>, fp: u64) -> ArgScores {
        let c = match self.find_keyset(fp, &args.keyset) {
            Some(i) => self.keysets[i].count,
            None => self.keyset_other,
        };
        let den = self.calls as f64 + ALPHA * (self.keysets.len() as f64 + 1.0);
        let keys = surprise_bits(c, den);
        let size = if self.size.count() >= 2 {
            Some(standardise(&self.size, args.log_size))
        } else {
            None
        };
        let mut values: Option<f64> = None;
        for (k, v) in &args.entries {
            if let Some(m) = self.keys.get(*k) {
                let s = m.score(v);
                values = Some(match values {
                    Some(x) if x >= s => x,
                    _ => s,
                });
            }
        }
        ArgScores { keys, size, values }
    }

    /// Learn a call's arguments (size, key set and values).
    pub fn observe(&mut self, args: &CallArgs<'_>, fp: u64) {
        self.observe_size(args);
        self.observe_keyset(args, fp);
        self.observe_values(args);
    }

    /// Learn a call's argument size.
    pub fn observe_size(&mut self, args: &CallArgs<'_>) {
        self.size.push(args.log_size);
    }

    /// Learn a call's key set (and count the call).
    pub fn observe_keyset(&mut self, args: &CallArgs<'_>, fp: u64) {
        self.calls += 1;
        match self.find_keyset(fp, &args.keyset) {
            Some(i) => self.keysets[i].count += 1,
            None if self.keysets.len() < MAX_KEYSETS => self.keysets.push(KeysetEntry {
                fingerprint: fp,
                keys: args.keyset.iter().map(|s| (*s).to_owned()).collect(),
                count: 1,
            }),
            None => self.keyset_other += 1,
        }
    }

    /// Learn a call's argument values, per key.
    pub fn observe_values(&mut self, args: &CallArgs<'_>) {
        for (k, v) in &args.entries {
            if let Some(m) = self.keys.get_mut(*k) {
                m.observe(v);
            } else if self.keys.len() < MAX_KEYS {
                let mut m = KeyModel::default();
                m.observe(v);
                self.keys.insert((*k).to_owned(), m);
            }
        }
    }

    /// Standardised `log2(1 + latency_ms)` against this tool's latencies (two needed).
    pub fn latency_score(&self, log_latency: f64) -> Option<f64> {
        if self.latency.count() >= 2 {
            Some(standardise(&self.latency, log_latency))
        } else {
            None
        }
    }

    /// Fold another profile of the same tool in (`rehash` gives our fingerprint of a key list).
    pub fn merge(&mut self, o: &ToolModel, rehash: &dyn Fn(&[String]) -> u64) {
        self.latency.merge(&o.latency);
        self.calls += o.calls;
        self.size.merge(&o.size);
        for e in &o.keysets {
            let fp = rehash(&e.keys);
            let keys: Vec<&str> = e.keys.iter().map(String::as_str).collect();
            match self.find_keyset(fp, &keys) {
                Some(i) => self.keysets[i].count += e.count,
                None if self.keysets.len() < MAX_KEYSETS => self.keysets.push(KeysetEntry {
                    fingerprint: fp,
                    keys: e.keys.clone(),
                    count: e.count,
                }),
                None => self.keyset_other += e.count,
            }
        }
        self.keyset_other += o.keyset_other;
        let mut names: Vec<&String> = o.keys.keys().collect();
        names.sort();
        for k in names {
            let om = &o.keys[k];
            if let Some(m) = self.keys.get_mut(k) {
                m.merge(om);
            } else if self.keys.len() < MAX_KEYS {
                self.keys.insert(k.clone(), om.clone());
            }
        }
    }

    /// Add a saved key set.
    pub fn push_keyset(&mut self, fp: u64, keys: Vec<String>, count: u64) {
        self.keysets.push(KeysetEntry {
            fingerprint: fp,
            keys,
            count,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::RandomState;

    #[test]
    fn categorical_surprise_and_cap() {
        let mut c = Categorical::new(2);
        // empty: p(unseen) = a / (0 + a) = 1 -> 0 bits
        assert_eq!(c.surprise("x"), 0.0);
        c.observe("a");
        c.observe("a");
        c.observe("b");
        // p(a) = 2.5 / (3 + 0.5 * 3) = 2.5 / 4.5
        assert!((c.surprise("a") - (4.5f64 / 2.5).log2()).abs() < 1e-15);
        // unseen: 0.5 / 4.5
        assert!((c.surprise("zz") - 9f64.log2()).abs() < 1e-15);
        c.observe("c"); // over the cap: counted as other
        assert!(c.overflowed());
        assert!(!c.contains("c"));
        assert_eq!(c.total(), 4);
        assert_eq!(c.entries(), vec![("a".into(), 2), ("b".into(), 1)]);
        let back = Categorical::from_parts(2, c.entries(), c.other()).unwrap();
        assert_eq!(back.total(), 4);
        assert!(Categorical::from_parts(1, c.entries(), 0).is_none());
        assert!(Categorical::from_parts(5, vec![("a".into(), 0)], 0).is_none());
    }

    #[test]
    fn key_model_scores_novel_values_high() {
        let mut m = KeyModel::default();
        for _ in 0..50 {
            m.observe(&ArgValue::Text(3.0, Some("sales")));
            m.observe(&ArgValue::Text(3.0, Some("orders")));
        }
        let usual = m.score(&ArgValue::Text(3.0, Some("sales")));
        let novel = m.score(&ArgValue::Text(3.0, Some("users")));
        let wrong_kind = m.score(&ArgValue::Number(3.0));
        assert!(usual < 1.1, "{usual}");
        assert!(novel > 6.0, "{novel}");
        assert!(wrong_kind > 6.0, "{wrong_kind}");
    }

    #[test]
    fn tool_model_keysets_and_sizes() {
        let h = RandomState::new();
        let mut t = ToolModel::default();
        let keys = vec!["query", "table"];
        let fp = keyset_fingerprint(&h, &keys);
        for i in 0..40 {
            let args = CallArgs {
                log_size: 5.0 + (i % 3) as f64 * 0.1,
                keyset: keys.clone(),
                entries: vec![("table", ArgValue::Text(3.0, Some("sales")))],
            };
            t.observe(&args, fp);
        }
        let normal = CallArgs {
            log_size: 5.1,
            keyset: keys.clone(),
            entries: vec![("table", ArgValue::Text(3.0, Some("sales")))],
        };
        let s = t.score(&normal, fp);
        assert!(s.keys < 0.1 && s.size.unwrap().abs() < 1.0 && s.values.unwrap() < 0.2);
        let odd_keys = vec!["query", "recipient", "table"];
        let odd = CallArgs {
            log_size: 15.0,
            keyset: odd_keys.clone(),
            entries: vec![("table", ArgValue::Text(3.0, Some("users")))],
        };
        let s = t.score(&odd, keyset_fingerprint(&h, &odd_keys));
        assert!(
            s.keys > 6.0 && s.size.unwrap() > 15.0 && s.values.unwrap() > 6.0,
            "{s:?}"
        );
    }
}
