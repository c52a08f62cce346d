//! The transcript line parser over real lines (examples/openclaw) and over
//! generated transcripts (`trajectory-corpus`, seed 42, 4 MB): JSON parsing,
//! entry mapping and event building, per MB. The generated set is read twice,
//! through the text path for message lines (what ingest runs) and through
//! the JSON tree only (the baseline, `TranscriptParser::tree_only`).

use std::io::Cursor;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use trajectory_ingest::jsonl::{read_jsonl, SourceContext};
use trajectory_ingest::openclaw::transcript::{read_transcript, TranscriptParser};

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

    let corpus = tempfile::tempdir().expect("temporary directory");
    trajectory_corpus::generate(corpus.path(), 42, 4_000_000).expect("generated corpus");
    let transcripts: Vec<Vec<u8>> = walkdir::WalkDir::new(corpus.path().join("agents"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .map(|e| std::fs::read(e.path()).expect("generated transcript"))
        .collect();
    let bytes: usize = transcripts.iter().map(Vec::len).sum();
    let mut group = c.benchmark_group("generated transcripts");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.sample_size(20);
    let context = context();
    for (name, tree_only) in [("text path", false), ("tree only", true)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut events = 0;
                for data in &transcripts {
                    let mut parser = TranscriptParser::new(&context);
                    if tree_only {
                        parser = parser.tree_only();
                    }
                    let read = read_jsonl(Cursor::new(data), &context, &mut parser);
                    events += read.map(|r| r.0.len()).unwrap_or(0);
                }
                events
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
