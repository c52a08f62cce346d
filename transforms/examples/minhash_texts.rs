//! Near-duplicate pairs of a JSONL file of texts with the project's MinHash
//! LSH, for the benchmark's comparison with Python `datasketch`.
//!
//! Usage: `minhash_texts TEXTS.jsonl [BANDS ROWS THRESHOLD]`, one
//! `{"text": "..."}` per line. Prints `{"documents", "pairs": [[i, j], ...],
//! "seconds"}`: time for shingling, signatures, banding and confirmation
//! (reading the file excluded).

use std::io::BufRead;
use std::time::Instant;

use trajectory_transforms::minhash::{shingles, MinHashParams, MinHasher};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: minhash_texts TEXTS.jsonl [BANDS ROWS THRESHOLD]")?;
    let mut params = MinHashParams::default();
    if let (Some(b), Some(r), Some(t)) = (args.next(), args.next(), args.next()) {
        params.bands = b.parse()?;
        params.rows = r.parse()?;
        params.threshold = t.parse()?;
    }
    let mut texts = Vec::new();
    for line in std::io::BufReader::new(std::fs::File::open(path)?).lines() {
        let value: serde_json::Value = serde_json::from_str(&line?)?;
        texts.push(value["text"].as_str().unwrap_or_default().to_string());
    }
    let started = Instant::now();
    let shingle_sets: Vec<Vec<u64>> = texts
        .iter()
        .map(|t| shingles(t, params.shingle_words))
        .collect();
    let pairs = MinHasher::new(params).near_duplicate_pairs(&shingle_sets);
    let seconds = started.elapsed().as_secs_f64();
    let pairs: Vec<[usize; 2]> = pairs.iter().map(|(i, j, _)| [*i, *j]).collect();
    println!(
        "{}",
        serde_json::json!({"documents": texts.len(), "pairs": pairs, "seconds": seconds})
    );
    Ok(())
}
