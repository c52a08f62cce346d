//! Commands that look after the store itself: `compact`, `vacuum`,
//! `history`, `verify`, `erase`, and the export register.

use anyhow::{bail, Context, Result};
use trajectory_store::{
    ErasureSelector, EventStore, ExportRecord, DEFAULT_TARGET_SEGMENT_BYTES, EVENTS_TABLE,
};

use crate::cli::{CompactArgs, EraseArgs, HistoryArgs, VacuumArgs, VerifyArgs};

pub async fn run_compact(store: &EventStore, args: CompactArgs) -> Result<()> {
    let target = args
        .target_size
        .map(|mib| mib * 1024 * 1024)
        .unwrap_or(DEFAULT_TARGET_SEGMENT_BYTES);
    let _lock = store.lock_writers()?;
    let mut summaries = Vec::new();
    for table in store.existing_tables().await? {
        summaries.push(store.compact(&table, target, 2).await?);
    }
    if summaries.is_empty() {
        bail!(trajectory_store::StoreError::NoEventsTable(
            store.location().root().to_string()
        ));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summaries)?);
        return Ok(());
    }
    for s in &summaries {
        match s.version {
            Some(version) => println!(
                "{}: {} segment(s) in {} partition(s) rewritten into {} ({} MiB read); {} → {} segments, version {version}",
                s.table,
                s.files_rewritten,
                s.partitions_compacted,
                s.files_after + s.files_rewritten - s.files_before,
                s.bytes_rewritten / (1024 * 1024),
                s.files_before,
                s.files_after,
            ),
            None => println!("{}: nothing to compact ({} segment(s))", s.table, s.files_before),
        }
    }
    println!("removed segments stay for time travel until `trajectory vacuum`");
    Ok(())
}

pub async fn run_vacuum(store: &EventStore, args: VacuumArgs) -> Result<()> {
    let retention = chrono::Duration::try_hours(args.retention_hours as i64)
        .context("--retention-hours is too large")?;
    let _lock = store.lock_writers()?;
    let summaries = store.vacuum(retention, args.dry_run).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summaries)?);
        return Ok(());
    }
    for s in &summaries {
        let verb = if s.dry_run { "would delete" } else { "deleted" };
        println!(
            "{}: {verb} {} unreferenced file(s)",
            s.table, s.files_deleted
        );
    }
    Ok(())
}

pub async fn run_history(store: &EventStore, args: HistoryArgs) -> Result<()> {
    let mut entries = store.history().await?;
    if entries.is_empty() {
        bail!(trajectory_store::StoreError::NoEventsTable(
            store.location().root().to_string()
        ));
    }
    if let Some(table) = &args.table {
        entries.retain(|e| &e.table == table);
    } else if !args.all_tables {
        entries.retain(|e| e.table == EVENTS_TABLE);
    }
    if let Some(limit) = args.limit {
        entries.truncate(limit);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(());
    }
    println!(
        "{:<16} {:>7}  {:<29}  {:<14} {:>10}  ingest id",
        "table", "version", "time", "operation", "rows added"
    );
    for e in &entries {
        println!(
            "{:<16} {:>7}  {:<29}  {:<14} {:>10}  {}",
            e.table,
            e.version,
            e.time.as_deref().unwrap_or("-"),
            e.operation,
            e.rows_added.map_or("-".to_string(), |n| n.to_string()),
            e.ingest_id.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

pub async fn run_verify(store: &EventStore, args: VerifyArgs) -> Result<()> {
    let report = store.verify().await?;
    if report.tables.is_empty() {
        bail!(trajectory_store::StoreError::NoEventsTable(
            store.location().root().to_string()
        ));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "checked {} segment(s), {} bytes, in table(s) {}",
            report.segments_checked,
            report.bytes_checked,
            report.tables.join(", ")
        );
        for p in &report.problems {
            println!("  {}: {}/{}: {}", p.problem, p.table, p.path, p.detail);
        }
        for orphan in &report.orphans {
            println!("  orphan (never committed; `trajectory vacuum` removes it): {orphan}");
        }
        if report.removed_awaiting_vacuum > 0 {
            println!(
                "  {} removed segment(s) kept for time travel until vacuum",
                report.removed_awaiting_vacuum
            );
        }
    }
    if !report.is_ok() {
        bail!(
            "verification failed: {} damaged or missing segment(s): {}",
            report
                .problems
                .iter()
                .filter(|p| p.problem != "no_recorded_hash")
                .count(),
            report
                .problems
                .iter()
                .filter(|p| p.problem != "no_recorded_hash")
                .map(|p| format!("{}/{} ({})", p.table, p.path, p.problem))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !args.json {
        println!("ok: every referenced segment is present and matches its recorded size, rows and sha256");
    }
    Ok(())
}

pub async fn run_erase(store: &EventStore, args: EraseArgs) -> Result<()> {
    let selector = match (args.session, args.agent, args.r#where) {
        (Some(id), None, None) => ErasureSelector::Session(id),
        (None, Some(id), None) => ErasureSelector::Agent(id),
        (None, None, Some(sql)) => ErasureSelector::Where(sql),
        _ => bail!("give exactly one of --session ID, --agent ID or --where SQL"),
    };
    let _lock = store.lock_writers()?;
    let receipt = store.erase(&selector).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&receipt)?);
    } else {
        println!("erasure {}", receipt.erasure_id);
        println!("  selector: {}", receipt.selector);
        println!(
            "  matched: {} event(s) in {} session(s)",
            receipt.matched_events, receipt.sessions
        );
        for t in &receipt.tables {
            println!(
                "  {:<16} {:>8} row(s) removed, {} left, {} segment(s) rewritten",
                t.table, t.rows_removed, t.rows_left, t.segments_rewritten
            );
        }
        println!(
            "  {} file(s) deleted from storage (vacuum, zero retention)",
            receipt.files_vacuumed
        );
        if receipt.exports.is_empty() {
            println!("  no registered export contained these events");
        }
        for e in &receipt.exports {
            if e.manifest_found {
                println!(
                    "  export {} ({}) has {} row(s) built from erased events: {} — rebuild or delete: {}",
                    e.export_id,
                    e.target,
                    e.rows,
                    e.manifest_path,
                    e.shards.join(", ")
                );
            } else {
                println!(
                    "  export {} ({}): manifest {} not found; check that copy by hand",
                    e.export_id, e.target, e.manifest_path
                );
            }
        }
    }
    if !receipt.is_complete() {
        bail!("erasure incomplete: matching rows are left (see the receipt); run it again");
    }
    Ok(())
}

/// Registers an export in the store so that `erase` can find its shards.
pub async fn register_export(
    store: &EventStore,
    target: &str,
    out_dir: &str,
    manifest_path: &str,
    events_version: u64,
) -> Result<()> {
    let absolute = |p: &str| {
        std::path::Path::new(p)
            .canonicalize()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| p.to_string())
    };
    let record = ExportRecord {
        export_id: uuid_like(),
        target: target.to_string(),
        out_dir: absolute(out_dir),
        manifest_path: absolute(manifest_path),
        events_version,
        created_at: chrono::Utc::now().to_rfc3339(),
    };
    store
        .record_export(&record)
        .await
        .context("cannot register the export in the store")
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:x}-{:x}", std::process::id())
}

/// The lineage of every derived table that exists (for export manifests).
pub async fn derived_jobs(store: &EventStore) -> Result<Option<serde_json::Value>> {
    let mut jobs = serde_json::Map::new();
    for name in trajectory_store::DERIVED_TABLES {
        if let Some(lineage) = store.derived_lineage(name).await? {
            jobs.insert(name.to_string(), serde_json::to_value(lineage)?);
        }
    }
    Ok((!jobs.is_empty()).then_some(serde_json::Value::Object(jobs)))
}
