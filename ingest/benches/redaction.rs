//! The redaction pass (policy trajectory-redact-v1) over text without and
//! with secrets: the common case is text with none. And the line screen
//! (`Redactor::line_is_clean`) over the lines of real transcripts
//! (examples/openclaw), which decides whether the per-field pass runs.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use trajectory_ingest::redaction::{RedactionPolicy, Redactor};

fn bench(c: &mut Criterion) {
    let redactor = Redactor::new(RedactionPolicy::default(), [7u8; 32]);
    let clean = "The build fails on main; please check the logs of the deploy service and \
                 update the README with the new config file path. "
        .repeat(200);
    let secrets = format!(
        "{clean} export OPENAI_API_KEY=sk-proj-Zx81kLmN0pQrStUvWxYz0123456789abcdEFGHijkl \
         aws AKIAZ7QWERTYUIOP1234 token ghp_9aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789 {clean}"
    );
    let mut group = c.benchmark_group("redaction");
    group.throughput(Throughput::Bytes(clean.len() as u64));
    group.bench_function("no secrets", |b| {
        b.iter(|| redactor.redact_text(&clean).0.len())
    });
    group.throughput(Throughput::Bytes(secrets.len() as u64));
    group.bench_function("three secrets", |b| {
        b.iter(|| redactor.redact_text(&secrets).0.len())
    });
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/openclaw/public/");
    let lines: Vec<String> = [
        "pi-v1-legacy-before-compaction.jsonl",
        "openclaw-v3-local-ollama-fallback-to-codex.excerpt.jsonl",
    ]
    .iter()
    .flat_map(|name| {
        let text = std::fs::read_to_string(format!("{root}{name}")).expect("example transcript");
        text.lines().map(str::to_string).collect::<Vec<_>>()
    })
    .collect();
    group.throughput(Throughput::Bytes(
        lines.iter().map(|l| l.len() as u64 + 1).sum(),
    ));
    group.bench_function("line screen, real transcript lines", |b| {
        b.iter(|| lines.iter().filter(|l| redactor.line_is_clean(l)).count())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
