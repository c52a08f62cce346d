//! Finding transcript files under the paths given to `trajectory ingest`.
//!
//! A directory is walked (symlinks not followed) for session transcripts:
//! `*.jsonl`, archived `*.jsonl.reset.<ts>` / `*.jsonl.deleted.<ts>`, and their
//! zstd forms (`*.zst`). Runtime sidecars (`*.trajectory.jsonl`) and other
//! JSONL files (cron run logs, config audit) are recognised by their first line,
//! which is not a session header, and listed as skipped. A file named
//! explicitly is always read as a transcript.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use walkdir::WalkDir;

use crate::openclaw::transcript::is_session_header;

/// A file chosen for ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub path: PathBuf,
    /// On-disk size in bytes (compressed size for `.zst`).
    pub size: u64,
}

/// A file seen but not ingested, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedFile {
    pub path: PathBuf,
    pub reason: String,
}

/// What discovery found.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// Files to read, sorted by path.
    pub files: Vec<SourceFile>,
    pub skipped: Vec<SkippedFile>,
}

/// Whether a file name looks like a session transcript or an archive of one.
pub fn is_transcript_name(name: &str) -> bool {
    let name = name.strip_suffix(".zst").unwrap_or(name);
    if name.ends_with(".trajectory.jsonl") {
        return false;
    }
    name.ends_with(".jsonl") || name.contains(".jsonl.reset.") || name.contains(".jsonl.deleted.")
}

/// Opens a file for reading, decompressing `.zst`.
pub fn open_decoded(path: &Path) -> io::Result<Box<dyn BufRead + Send>> {
    let file = File::open(path)?;
    let is_zstd = path.extension().is_some_and(|e| e == "zst");
    Ok(if is_zstd {
        Box::new(BufReader::with_capacity(
            1 << 20,
            zstd::stream::read::Decoder::new(file)?,
        ))
    } else {
        Box::new(BufReader::with_capacity(1 << 20, file))
    })
}

fn first_line(path: &Path) -> io::Result<Vec<u8>> {
    let mut reader = open_decoded(path)?.take(1 << 20);
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)?;
    Ok(line)
}

/// Finds the files to ingest under `paths`.
///
/// Errors: a path that does not exist. Unreadable files inside a walked
/// directory are reported as skipped, not as errors.
pub fn discover(paths: &[PathBuf]) -> io::Result<Discovery> {
    let mut discovery = Discovery::default();
    for path in paths {
        let metadata = std::fs::metadata(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        if metadata.is_file() {
            discovery.files.push(SourceFile {
                path: path.clone(),
                size: metadata.len(),
            });
            continue;
        }
        for entry in WalkDir::new(path).sort_by_file_name() {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    discovery.skipped.push(SkippedFile {
                        path: e
                            .path()
                            .map(Path::to_path_buf)
                            .unwrap_or_else(|| path.clone()),
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            if !entry.file_type().is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy();
            if !is_transcript_name(&name) {
                continue;
            }
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            match first_line(entry.path()) {
                Ok(line) if is_session_header(&line) => discovery.files.push(SourceFile {
                    path: entry.path().to_path_buf(),
                    size,
                }),
                Ok(line) if line.is_empty() => discovery.skipped.push(SkippedFile {
                    path: entry.path().to_path_buf(),
                    reason: "empty file".into(),
                }),
                Ok(_) => discovery.skipped.push(SkippedFile {
                    path: entry.path().to_path_buf(),
                    reason: "not a session transcript (first line is not a session header)".into(),
                }),
                Err(e) => discovery.skipped.push(SkippedFile {
                    path: entry.path().to_path_buf(),
                    reason: format!("cannot read: {e}"),
                }),
            }
        }
    }
    discovery.files.sort_by(|a, b| a.path.cmp(&b.path));
    discovery.files.dedup_by(|a, b| a.path == b.path);
    Ok(discovery)
}

/// The agent id from an OpenClaw path `…/agents/<agentId>/sessions/<file>`.
pub fn agent_id_from_path(path: &Path) -> Option<String> {
    let parts: Vec<&str> = path.iter().filter_map(|p| p.to_str()).collect();
    parts
        .windows(3)
        .rev()
        .find(|w| w[0] == "agents" && w[2] == "sessions")
        .map(|w| w[1].to_string())
}

/// The session id hint from a file name: the part before `.jsonl`.
pub fn session_id_from_file_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.find(".jsonl") {
        Some(end) => name[..end].to_string(),
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcript_names() {
        assert!(is_transcript_name("abc.jsonl"));
        assert!(is_transcript_name(
            "abc.jsonl.deleted.2026-01-28T20-32-52.405Z"
        ));
        assert!(is_transcript_name(
            "abc.jsonl.deleted.2026-11-22T02-28-39.182Z.bdb0.zst"
        ));
        assert!(is_transcript_name("abc.jsonl.reset.123"));
        assert!(!is_transcript_name("abc.trajectory.jsonl"));
        assert!(!is_transcript_name("abc.trajectory.jsonl.zst"));
        assert!(!is_transcript_name("sessions.json"));
    }

    #[test]
    fn agent_and_session_from_paths() {
        let p = Path::new("/h/.openclaw/agents/ops/sessions/8555a0a4.jsonl.deleted.2026");
        assert_eq!(agent_id_from_path(p).as_deref(), Some("ops"));
        assert_eq!(session_id_from_file_name(p), "8555a0a4");
        assert_eq!(agent_id_from_path(Path::new("/x/y.jsonl")), None);
    }

    #[test]
    fn walking_keeps_transcripts_and_skips_other_jsonl() {
        let dir = tempfile::tempdir().unwrap();
        let sessions = dir.path().join("agents/main/sessions");
        std::fs::create_dir_all(&sessions).unwrap();
        std::fs::write(
            sessions.join("a.jsonl"),
            "{\"type\":\"session\",\"id\":\"a\"}\n",
        )
        .unwrap();
        std::fs::write(sessions.join("runs.jsonl"), "{\"ts\":1,\"jobId\":\"j\"}\n").unwrap();
        std::fs::write(sessions.join("a.trajectory.jsonl"), "{}\n").unwrap();
        std::fs::write(sessions.join("notes.txt"), "x").unwrap();
        let found = discover(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(found.files.len(), 1);
        assert!(found.files[0].path.ends_with("a.jsonl"));
        assert_eq!(found.skipped.len(), 1);
        assert!(found.skipped[0].path.ends_with("runs.jsonl"));
        assert!(discover(&[dir.path().join("missing")]).is_err());
    }
}
