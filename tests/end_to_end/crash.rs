//! Crash safety: ingests killed with SIGKILL at random moments, then resumed,
//! store every event exactly once; concurrent ingests likewise.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{examples, Workspace};

/// Kills that must land while an ingest is running (CI: at least 20).
fn required_kills() -> usize {
    std::env::var("TRAJECTORY_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24)
}

/// A small deterministic generator (splitmix64) for kill moments.
struct KillClock(u64);

impl KillClock {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn source_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(source_files(&path));
        } else if path.file_name().is_some_and(|n| n != "SOURCES.md") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Copies the examples into `input` in `steps` groups, one group per step,
/// keeping relative paths (sqlite files with their -wal/-shm together).
fn copy_group(files: &[PathBuf], from: &Path, input: &Path) {
    for file in files {
        let target = input.join(file.strip_prefix(from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(file, target).unwrap();
    }
}

fn groups(files: Vec<PathBuf>, count: usize) -> Vec<Vec<PathBuf>> {
    // Keep an sqlite database with its -wal / -shm companions.
    let mut groups: Vec<Vec<PathBuf>> = Vec::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let companion =
            name.ends_with("-wal") || name.ends_with("-shm") || name.ends_with("-wal.zst");
        match groups.last_mut() {
            Some(last) if companion => last.push(file),
            _ => groups.push(vec![file]),
        }
    }
    let per = groups.len().div_ceil(count).max(1);
    groups.chunks(per).map(|c| c.concat()).collect()
}

fn ingest_command(store: &Path, input: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_trajectory"));
    command
        .arg("--store")
        .arg(store)
        .args(["ingest", "--json", "--auto-compact-after", "3"])
        .arg(input)
        .env_remove("TRAJECTORY_STORE")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// The stored event ids (checkpoint rows excluded: their number depends on
/// how many runs it took), one per line, sorted; plus the quarantine count.
fn stored(ws: &Workspace) -> (String, i64, i64) {
    let ids = ws.ok([
        "sql",
        "--format",
        "csv",
        "SELECT event_id FROM events WHERE kind NOT IN ('source_checkpoint') ORDER BY event_id",
    ]);
    let rows = ws.count("SELECT count(*) FROM events WHERE kind <> 'source_checkpoint'");
    let quarantined = ws.count("SELECT count(*) FROM quarantine");
    (ids, rows, quarantined)
}

#[test]
fn sigkill_at_random_moments_then_resume_stores_each_event_once() {
    let ws = Workspace::new();
    let input = ws.path("input");
    let from = examples();
    let files = source_files(&from);
    let steps = groups(files, 8);
    let mut clock = KillClock(0x5EED_CAFE);
    let mut window_ms: u64 = 1500;
    let mut kills = 0usize;
    let mut finished_first = 0usize;
    let mut step = 0usize;
    let mut attempts = 0usize;
    while kills < required_kills() && attempts < 400 {
        attempts += 1;
        // Add the next group of sources every few attempts, so kills land in
        // runs with much to read as well as in short resumed ones.
        if attempts % 3 == 1 && step < steps.len() {
            copy_group(&steps[step], &from, &input);
            step += 1;
        }
        let started = Instant::now();
        let mut child = ingest_command(&ws.store(), &input).spawn().unwrap();
        let delay = clock.next() % window_ms.max(1);
        std::thread::sleep(Duration::from_millis(delay));
        if child.try_wait().unwrap().is_some() {
            finished_first += 1;
            // Runs are shorter than the window: aim earlier next time.
            window_ms = (started.elapsed().as_millis() as u64).clamp(20, window_ms);
            continue;
        }
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(status.code().is_none(), "killed by a signal");
        kills += 1;
    }
    assert!(
        kills >= required_kills(),
        "only {kills} kills landed in {attempts} attempts"
    );
    for group in &steps[step..] {
        copy_group(group, &from, &input);
    }
    // Resume: one uninterrupted run finishes the work.
    let resumed = ws.ingest(&[&input]);
    assert!(resumed["files_failed"] == 0, "{resumed}");

    // The same input (same paths: ids include where a line was read)
    // ingested once, without crashes, into another store.
    let clean = Workspace::new();
    clean.ingest(&[&input]);
    let (ids, rows, quarantined) = stored(&ws);
    let (clean_ids, clean_rows, clean_quarantined) = stored(&clean);
    assert_eq!(
        rows, clean_rows,
        "rows after {kills} kills ({finished_first} runs finished first)"
    );
    assert_eq!(quarantined, clean_quarantined);
    assert_eq!(
        ws.count("SELECT count(*) - count(DISTINCT event_id) FROM events"),
        0,
        "no event stored twice"
    );
    assert!(ids == clean_ids, "the same events as one clean ingest");

    // Killed writers leave only uncommitted files: verify passes, and vacuum
    // removes the orphans.
    let report: serde_json::Value = serde_json::from_str(&ws.ok(["verify", "--json"])).unwrap();
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
    ws.ok(["vacuum", "--retention-hours", "0"]);
    let report: serde_json::Value = serde_json::from_str(&ws.ok(["verify", "--json"])).unwrap();
    assert_eq!(report["orphans"], serde_json::json!([]), "{report}");
}

#[test]
fn concurrent_ingests_of_overlapping_inputs_store_each_event_once() {
    let ws = Workspace::new();
    let all = examples();
    let public = examples().join("public");
    let mut first = ingest_command(&ws.store(), &all).spawn().unwrap();
    let mut second = ingest_command(&ws.store(), &public).spawn().unwrap();
    let mut third = ingest_command(&ws.store(), &all).spawn().unwrap();
    assert!(first.wait().unwrap().success());
    assert!(second.wait().unwrap().success());
    assert!(third.wait().unwrap().success());

    let clean = Workspace::new();
    clean.ingest(&[&all]);
    let (ids, rows, quarantined) = stored(&ws);
    let (clean_ids, clean_rows, clean_quarantined) = stored(&clean);
    assert_eq!(rows, clean_rows);
    assert_eq!(quarantined, clean_quarantined);
    assert!(ids == clean_ids);
    assert_eq!(
        ws.count("SELECT count(*) - count(DISTINCT event_id) FROM events"),
        0
    );
}
