//! Times SQL queries in process over a store's `events` table, for the
//! benchmark's comparison with DuckDB (which is also timed in process).
//!
//! Usage: `query_timing STORE QUERIES.json RUNS` where QUERIES.json is
//! `[{"name": "...", "sql": "..."}]`. Prints `[{"name", "rows", "seconds": [..]}]`:
//! each run is planning + execution + collecting every row; the engine (the
//! Delta log and the views) is opened once, as a session would.

use std::time::Instant;

use trajectory_query::QueryEngine;
use trajectory_store::EventStore;

/// The allocator of the `trajectory` binary with its settings (mimalloc,
/// 10 s purge delay, no transparent huge pages), so the timings are the
/// ones `trajectory sql` sees. Without the purge delay, mimalloc returned
/// each query's buffers to the OS and the next query faulted them back in:
/// 6,400 to 8,100 page faults for the suite's 70 runs on the 100 MB store
/// against 2,860 with it.
#[path = "../../src/allocator.rs"]
mod allocator;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    allocator::set_purge_delay();
    allocator::disable_transparent_huge_pages();
    allocator::skip_cleanup_at_exit();
    let mut args = std::env::args().skip(1);
    let store = args
        .next()
        .ok_or("usage: query_timing STORE QUERIES.json RUNS")?;
    let queries = args
        .next()
        .ok_or("usage: query_timing STORE QUERIES.json RUNS")?;
    let runs: usize = args.next().unwrap_or_else(|| "5".into()).parse()?;
    let queries: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(queries)?)?;
    let store = EventStore::open(&store)?;
    let engine = QueryEngine::open(&store, None).await?;
    let mut out = Vec::new();
    for query in &queries {
        let sql = query["sql"].as_str().ok_or("query without sql")?;
        let mut seconds = Vec::new();
        let mut rows = 0;
        for _ in 0..runs {
            let started = Instant::now();
            let batches = engine.collect(sql).await?;
            seconds.push(started.elapsed().as_secs_f64());
            rows = batches.iter().map(|b| b.num_rows()).sum::<usize>();
        }
        out.push(serde_json::json!({"name": query["name"], "rows": rows, "seconds": seconds}));
    }
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}
