//! Near-duplicate detection: word shingles, MinHash signatures, LSH banding,
//! candidate pairs confirmed by exact Jaccard, clusters by union-find.
//!
//! Parameters follow the usual LLM-data practice (see
//! `docs/training-formats.md` §5.2): 5-word shingles, 14 bands × 8 rows
//! (112 permutations), which puts the LSH threshold near
//! (1/14)^(1/8) ≈ 0.72 Jaccard; pairs are then kept only when their exact
//! Jaccard over the shingle sets reaches `threshold` (default 0.8), so LSH
//! only decides which pairs are looked at.
//!
//! Hashing: each word is hashed once (FNV-1a 64), a shingle's hash combines
//! its words' hashes, and permutation `i` maps a shingle hash `x` to
//! `(a_i·x + b_i) mod (2^61 − 1)` with `a_i`, `b_i` drawn from a seeded
//! splitmix64 stream, as in datasketch.

use std::collections::HashMap;

/// MinHash LSH parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct MinHashParams {
    /// Words per shingle (default 5).
    pub shingle_words: usize,
    /// LSH bands (default 14).
    pub bands: usize,
    /// Rows per band (default 8); permutations = bands × rows.
    pub rows: usize,
    /// Exact Jaccard a candidate pair must reach to be a near-duplicate (default 0.8).
    pub threshold: f64,
    /// Seed of the permutations (default 1).
    pub seed: u64,
}

impl Default for MinHashParams {
    fn default() -> MinHashParams {
        MinHashParams {
            shingle_words: 5,
            bands: 14,
            rows: 8,
            threshold: 0.8,
            seed: 1,
        }
    }
}

const MERSENNE_61: u64 = (1 << 61) - 1;

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// `x mod 2^61 − 1` for `x < 2^122`.
fn mod_mersenne(x: u128) -> u64 {
    let folded = (x & u128::from(MERSENNE_61)) + (x >> 61);
    let folded = (folded & u128::from(MERSENNE_61)) + (folded >> 61);
    let mut r = folded as u64;
    if r >= MERSENNE_61 {
        r -= MERSENNE_61;
    }
    r
}

/// Lower-cased words of `text`: runs of alphanumeric characters.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The sorted, deduplicated shingle hashes of `text` (`shingle_words`-word
/// windows; a text shorter than that is one shingle; an empty text none).
pub fn shingles(text: &str, shingle_words: usize) -> Vec<u64> {
    let hashes: Vec<u64> = words(text).iter().map(|w| fnv1a(w.as_bytes())).collect();
    let width = shingle_words.max(1);
    let mut out: Vec<u64> = if hashes.is_empty() {
        Vec::new()
    } else if hashes.len() < width {
        vec![combine(&hashes)]
    } else {
        hashes.windows(width).map(combine).collect()
    };
    out.sort_unstable();
    out.dedup();
    out
}

fn combine(words: &[u64]) -> u64 {
    let mut h: u64 = 0x243F_6A88_85A3_08D3;
    for w in words {
        h = (h ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
    }
    // Keep it below the prime so the permutation is a bijection on it.
    h % MERSENNE_61
}

/// Exact Jaccard similarity of two sorted, deduplicated sets (1 for two
/// empty sets).
pub fn jaccard<T: Ord>(a: &[T], b: &[T]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let (mut i, mut j, mut common) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    common as f64 / (a.len() + b.len() - common) as f64
}

/// A MinHasher: the permutations for one parameter set.
pub struct MinHasher {
    params: MinHashParams,
    a: Vec<u64>,
    b: Vec<u64>,
}

impl MinHasher {
    /// Draws `bands × rows` permutations from `params.seed`.
    pub fn new(params: MinHashParams) -> MinHasher {
        let count = params.bands.max(1) * params.rows.max(1);
        let mut state = params.seed;
        let mut a = Vec::with_capacity(count);
        let mut b = Vec::with_capacity(count);
        for _ in 0..count {
            a.push(splitmix64(&mut state) % (MERSENNE_61 - 1) + 1);
            b.push(splitmix64(&mut state) % MERSENNE_61);
        }
        MinHasher { params, a, b }
    }

    /// The signature of a shingle set (`bands × rows` values; all
    /// `u64::MAX` for an empty set).
    pub fn signature(&self, shingles: &[u64]) -> Vec<u64> {
        let mut signature = vec![u64::MAX; self.a.len()];
        for &x in shingles {
            let x = u128::from(x);
            for ((slot, &a), &b) in signature.iter_mut().zip(&self.a).zip(&self.b) {
                let value = mod_mersenne(u128::from(a) * x + u128::from(b));
                if value < *slot {
                    *slot = value;
                }
            }
        }
        signature
    }

    /// Near-duplicate pairs `(i, j, jaccard)` with `i < j` among `documents`
    /// (shingle sets): LSH candidates whose exact Jaccard reaches the
    /// threshold. Empty documents are never paired.
    pub fn near_duplicate_pairs(&self, documents: &[Vec<u64>]) -> Vec<(usize, usize, f64)> {
        let rows = self.params.rows.max(1);
        // Signatures are the expensive part: computed on every core.
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let per_worker = documents.len().div_ceil(workers).max(1);
        let signatures: Vec<Vec<u64>> = std::thread::scope(|scope| {
            let handles: Vec<_> = documents
                .chunks(per_worker)
                .map(|part| {
                    scope.spawn(move || part.iter().map(|s| self.signature(s)).collect::<Vec<_>>())
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        });
        let mut buckets: HashMap<(usize, u64), Vec<usize>> = HashMap::new();
        for (index, (shingles, signature)) in documents.iter().zip(&signatures).enumerate() {
            if shingles.is_empty() {
                continue;
            }
            for (band, key) in band_keys(signature, rows).into_iter().enumerate() {
                buckets.entry((band, key)).or_default().push(index);
            }
        }
        let mut candidates: Vec<(usize, usize)> = Vec::new();
        for members in buckets.values() {
            for (n, &i) in members.iter().enumerate() {
                for &j in &members[n + 1..] {
                    candidates.push((i.min(j), i.max(j)));
                }
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        candidates
            .into_iter()
            .filter_map(|(i, j)| {
                let similarity = jaccard(&documents[i], &documents[j]);
                (similarity >= self.params.threshold).then_some((i, j, similarity))
            })
            .collect()
    }
}

/// The LSH bucket key of each band of `signature` (`rows` values per band):
/// a hash of the band's values seeded with the band's index, so equal keys
/// of different bands never meet in one bucket.
pub fn band_keys(signature: &[u64], rows: usize) -> Vec<u64> {
    signature
        .chunks(rows.max(1))
        .enumerate()
        .map(|(band, values)| {
            let mut h: u64 = band as u64;
            for v in values {
                h = (h ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(31);
            }
            h
        })
        .collect()
}

/// Union-find over `n` items; `find` gives each component's smallest member.
pub struct Components {
    parent: Vec<usize>,
}

impl Components {
    pub fn new(n: usize) -> Components {
        Components {
            parent: (0..n).collect(),
        }
    }

    /// Adds a new single-member component; returns its index.
    pub fn add(&mut self) -> usize {
        self.parent.push(self.parent.len());
        self.parent.len() - 1
    }

    /// Items so far.
    pub fn len(&self) -> usize {
        self.parent.len()
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }

    pub fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    pub fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            let (low, high) = (ra.min(rb), ra.max(rb));
            self.parent[high] = low;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic text of `n` words from a vocabulary of 5,000.
    fn text(seed: u64, n: usize) -> Vec<String> {
        let mut state = seed;
        (0..n)
            .map(|_| format!("w{}", splitmix64(&mut state) % 5000))
            .collect()
    }

    #[test]
    fn jaccard_of_shingles_matches_set_arithmetic() {
        let a = shingles("the quick brown fox jumps over the lazy dog", 2);
        let b = shingles("the quick brown fox jumps over a lazy dog", 2);
        // 8 bigrams each; 6 shared ("over the", "the lazy" vs "over a", "a lazy").
        assert_eq!(a.len(), 8);
        assert!((jaccard(&a, &b) - 6.0 / 10.0).abs() < 1e-12);
        assert_eq!(jaccard(&a, &a), 1.0);
        assert_eq!(shingles("", 5), Vec::<u64>::new());
        assert_eq!(shingles("Two WORDS", 5).len(), 1);
        assert_eq!(shingles("two words", 5), shingles("TWO, words!", 5));
    }

    #[test]
    fn signatures_estimate_jaccard() {
        let hasher = MinHasher::new(MinHashParams::default());
        let base = text(7, 400);
        let mut edited = base.clone();
        for i in (0..400).step_by(40) {
            edited[i] = format!("x{i}");
        }
        let (a, b) = (shingles(&base.join(" "), 5), shingles(&edited.join(" "), 5));
        let exact = jaccard(&a, &b);
        let (sa, sb) = (hasher.signature(&a), hasher.signature(&b));
        let estimate = sa.iter().zip(&sb).filter(|(x, y)| x == y).count() as f64 / sa.len() as f64;
        assert!(
            (estimate - exact).abs() < 0.12,
            "estimate {estimate} vs exact {exact}"
        );
    }

    #[test]
    fn planted_near_duplicates_are_found_and_distinct_texts_are_not_merged() {
        // 300 distinct documents; 100 of them get a near-duplicate with 1–3
        // words changed in 200 (Jaccard well above 0.8).
        let mut documents: Vec<Vec<u64>> = Vec::new();
        let mut planted = Vec::new();
        let mut state = 99u64;
        for d in 0..300u64 {
            documents.push(shingles(&text(1000 + d, 200).join(" "), 5));
        }
        for d in 0..100usize {
            let mut words = text(1000 + d as u64, 200);
            let changes = 1 + (splitmix64(&mut state) % 3) as usize;
            for _ in 0..changes {
                let at = (splitmix64(&mut state) % 200) as usize;
                words[at] = format!("edit{at}");
            }
            planted.push((d, documents.len()));
            documents.push(shingles(&words.join(" "), 5));
        }
        let hasher = MinHasher::new(MinHashParams::default());
        let found = hasher.near_duplicate_pairs(&documents);
        // Truth: exact Jaccard ≥ threshold over all pairs.
        let mut truth = Vec::new();
        for i in 0..documents.len() {
            for j in i + 1..documents.len() {
                if jaccard(&documents[i], &documents[j]) >= 0.8 {
                    truth.push((i, j));
                }
            }
        }
        assert!(truth.len() >= 95, "planted pairs are true near-duplicates");
        let found_pairs: Vec<(usize, usize)> = found.iter().map(|(i, j, _)| (*i, *j)).collect();
        let planted_found = planted.iter().filter(|p| found_pairs.contains(p)).count();
        assert!(
            planted_found >= 95,
            "{planted_found} of 100 planted pairs found"
        );
        let true_positives = found_pairs.iter().filter(|p| truth.contains(p)).count();
        let recall = true_positives as f64 / truth.len() as f64;
        let precision = true_positives as f64 / found_pairs.len().max(1) as f64;
        assert!(recall >= 0.95, "recall {recall}");
        assert!(precision >= 0.95, "precision {precision}");
    }

    #[test]
    fn components_join_transitively() {
        let mut c = Components::new(5);
        c.union(3, 1);
        c.union(1, 4);
        assert_eq!(c.find(4), 1);
        assert_eq!(c.find(3), 1);
        assert_eq!(c.find(0), 0);
    }
}
