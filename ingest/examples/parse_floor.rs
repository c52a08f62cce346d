//! The parse-only floor of the ingest benchmark: every line of every
//! `*.jsonl` / `*.log` file under a directory parsed with `serde_json` into a
//! `Value`, nothing else (no normalisation, redaction or writing).
//!
//! Usage: `parse_floor DIR` → one JSON object on stdout:
//! `{"files", "lines", "bytes", "parsed", "seconds"}`.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "jsonl" || e == "log") {
            out.push(path);
        }
    }
}

fn main() {
    let dir = std::env::args().nth(1).expect("usage: parse_floor DIR");
    let mut paths = Vec::new();
    files(Path::new(&dir), &mut paths);
    let started = Instant::now();
    let (mut lines, mut bytes, mut parsed) = (0u64, 0u64, 0u64);
    for path in &paths {
        let Ok(file) = std::fs::File::open(path) else {
            continue;
        };
        for line in std::io::BufReader::new(file)
            .split(b'\n')
            .map_while(Result::ok)
        {
            lines += 1;
            bytes += line.len() as u64 + 1;
            if serde_json::from_slice::<serde_json::Value>(&line).is_ok() {
                parsed += 1;
            }
        }
    }
    println!(
        "{}",
        serde_json::json!({"files": paths.len(), "lines": lines, "bytes": bytes,
                           "parsed": parsed, "seconds": started.elapsed().as_secs_f64()})
    );
}
