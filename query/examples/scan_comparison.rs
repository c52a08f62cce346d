//! Times the same SQL through the two ways of scanning the `events` table,
//! interleaved run by run so machine noise hits both alike: the snapshot
//! file list (`SnapshotTable`, what `QueryEngine` uses) and delta-rs's own
//! provider. The measurement behind docs/architecture.md ("Query scans").
//!
//! Usage: `scan_comparison STORE QUERIES.json [RUNS]` (QUERIES.json as for
//! `query_timing`). `DFOPTS=key=value,...` sets DataFusion options on both
//! sessions, e.g. `DFOPTS=datafusion.execution.parquet.enable_page_index=false`.
//! Prints the median milliseconds per query and their sums.
use datafusion::prelude::*;
use std::sync::Arc;
use std::time::Instant;
use trajectory_query::snapshot_table::SnapshotTable;
use trajectory_store::EventStore;

fn config() -> SessionConfig {
    let mut config = SessionConfig::new();
    for kv in std::env::var("DFOPTS")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
    {
        let (k, v) = kv.split_once('=').expect("DFOPTS entries are key=value");
        config.options_mut().set(k, v).expect("a DataFusion option");
    }
    config
}

/// The allocator of the `trajectory` binary, so the timings are the ones
/// `trajectory sql` sees.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: scan_comparison STORE QUERIES.json [RUNS]";
    let store = EventStore::open(args.get(1).ok_or(usage)?)?;
    let queries: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(args.get(2).ok_or(usage)?)?)?;
    let runs = args.get(3).map_or(Ok(7), |s| s.parse::<usize>())?.max(1);
    let table = store
        .events_table()
        .await?
        .ok_or("the store has no events yet")?;
    let snap = SessionContext::new_with_config(config());
    let snapshot = SnapshotTable::try_new(&table, &snap)?
        .ok_or("the table uses deletion vectors or column mapping")?;
    snap.register_table("events", Arc::new(snapshot))?;
    let delta = SessionContext::new_with_config(config());
    table.update_datafusion_session(&delta.state())?;
    delta.register_table("events", table.table_provider().await?)?;
    let (mut ts, mut td) = (0.0, 0.0);
    for q in &queries {
        let sql = q["sql"].as_str().ok_or("query without sql")?;
        let mut a = vec![];
        let mut b = vec![];
        for _ in 0..runs {
            let t = Instant::now();
            snap.sql(sql).await?.collect().await?;
            a.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            delta.sql(sql).await?.collect().await?;
            b.push(t.elapsed().as_secs_f64() * 1e3);
        }
        a.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        ts += a[runs / 2];
        td += b[runs / 2];
        println!(
            "{:40} snapshot {:6.1}  delta-rs {:6.1}",
            q["name"].as_str().unwrap_or("?"),
            a[runs / 2],
            b[runs / 2]
        );
    }
    println!("total snapshot {ts:.1} delta-rs {td:.1}");
    Ok(())
}
