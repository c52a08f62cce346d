//! The transcript line parser over real lines (examples/openclaw): JSON
//! parsing, entry mapping and event building, per line and per MB.

use std::io::Cursor;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use trajectory_ingest::jsonl::SourceContext;
use trajectory_ingest::openclaw::transcript::read_transcript;

fn context() -> SourceContext {
    SourceContext {
        source_uri: "file:///bench/session.jsonl".into(),
        agent_id: Some("main".into()),
        session_id_hint: Some("bench".into()),
        ingest_id: "bench".into(),
        ingested_at: chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default(),
        max_line_bytes: 64 * 1024 * 1024,
    }
}

fn bench(c: &mut Criterion) {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/openclaw/public/");
    let mut group = c.benchmark_group("transcript");
    for name in [
        "pi-v1-legacy-before-compaction.jsonl",
        "openclaw-v3-local-ollama-fallback-to-codex.excerpt.jsonl",
    ] {
        let bytes = std::fs::read(format!("{root}{name}")).expect("example transcript");
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        let context = context();
        group.bench_function(name, |b| {
            b.iter(|| read_transcript(Cursor::new(&bytes), &context).map(|r| r.0.len()))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
