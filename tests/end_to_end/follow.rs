//! `trajectory ingest --follow`: appends, new files and rotation are picked
//! up; SIGTERM commits and exits cleanly.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::Workspace;

fn line(id: &str, parent: &str, text: &str) -> String {
    format!(
        r#"{{"type":"message","id":"{id}","parentId":"{parent}","timestamp":"2026-07-01T10:00:00.000Z","message":{{"role":"user","content":"{text}"}}}}"#
    )
}

fn wait_for(ws: &Workspace, query: &str, expected: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = ws.run(["sql", "--format", "csv", query]);
        let n = String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse::<i64>().ok())
            .unwrap_or(-1);
        if n == expected || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn follow_picks_up_appends_new_files_and_rotation_then_stops_on_sigterm() {
    let ws = Workspace::new();
    let dir = ws.path("sessions");
    std::fs::create_dir_all(&dir).unwrap();
    let live = dir.join("live.jsonl");
    std::fs::write(
        &live,
        format!(
            "{}\n{}\n",
            r#"{"type":"session","version":3,"id":"live-1","timestamp":"2026-07-01T10:00:00.000Z"}"#,
            line("u1", "x", "one")
        ),
    )
    .unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_trajectory"))
        .arg("--store")
        .arg(ws.store())
        .args(["ingest", "--follow", "--interval", "0.3"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let users = "SELECT count(*) AS n FROM events WHERE kind = 'user_message'";
    assert_eq!(wait_for(&ws, users, 1), 1);

    // An append to the live file.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&live)
        .unwrap();
    writeln!(file, "{}", line("u2", "u1", "two")).unwrap();
    drop(file);
    assert_eq!(wait_for(&ws, users, 2), 2);

    // Rotation: the file is renamed away and a new one starts.
    std::fs::rename(&live, dir.join("live.jsonl.reset.2026-07-01T10-05-00Z")).unwrap();
    std::fs::write(
        dir.join("next.jsonl"),
        format!(
            "{}\n{}\n",
            r#"{"type":"session","version":3,"id":"live-2","timestamp":"2026-07-02T00:00:01.000Z"}"#,
            line("v1", "x", "three")
        ),
    )
    .unwrap();
    assert_eq!(wait_for(&ws, users, 3), 3);

    // A line written just before the signal is committed before exit.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("next.jsonl"))
        .unwrap();
    writeln!(file, "{}", line("v2", "v1", "four")).unwrap();
    drop(file);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "follow did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = child.wait_with_output().unwrap();
    assert!(
        exit.success(),
        "exit {exit:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("stopped"));
    assert_eq!(ws.count(users), 4);
    assert_eq!(
        ws.count("SELECT count(DISTINCT event_id) FROM events"),
        ws.count("SELECT count(*) FROM events"),
        "rotation re-read nothing twice"
    );
}
