//! Finding the sources under the paths given to `trajectory ingest`.
//!
//! A directory is walked (symlinks not followed). Each file is classified by
//! its name and place ([`crate::sources::classify_by_name`]); JSONL files with
//! no telling name are classified by their first line. JSONL files of no known
//! format are listed as skipped with the reason. A file named explicitly that
//! matches nothing is read as a transcript.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use walkdir::WalkDir;

use crate::sources::{
    classify_by_first_line, classify_by_name, first_line, is_sniffable_name, Source, SourceKind,
};

/// A file seen but not ingested, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedFile {
    pub path: PathBuf,
    pub reason: String,
}

/// What discovery found.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// Sources to read: config files first (so base URLs are known before
    /// any event is classified), then by path.
    pub sources: Vec<Source>,
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

/// Opens a file for reading, decompressing `.zst`, with a 64 KiB buffer
/// (a line longer than the buffer is still read whole; a larger buffer per
/// file only costs fresh pages: most transcripts are smaller than 1 MiB).
pub fn open_decoded(path: &Path) -> io::Result<Box<dyn BufRead + Send>> {
    open_decoded_buffered(path, 64 << 10)
}

/// [`open_decoded`] with a buffer of `capacity` bytes (each fill reads up
/// to that much of the file).
pub fn open_decoded_buffered(path: &Path, capacity: usize) -> io::Result<Box<dyn BufRead + Send>> {
    let file = File::open(path)?;
    let is_zstd = path.extension().is_some_and(|e| e == "zst");
    Ok(if is_zstd {
        Box::new(BufReader::with_capacity(
            capacity,
            zstd::stream::read::Decoder::new(file)?,
        ))
    } else {
        Box::new(BufReader::with_capacity(capacity, file))
    })
}

fn classify(path: &Path, explicit: bool) -> Result<SourceKind, String> {
    if let Some(kind) = classify_by_name(path) {
        return Ok(kind);
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !explicit && !is_sniffable_name(&name) {
        return Err(String::new());
    }
    match first_line(path) {
        Ok(line) => match classify_by_first_line(&line) {
            Some(kind) => Ok(kind),
            None if explicit => Ok(SourceKind::Transcript),
            None if line.is_empty() => Err("empty file".into()),
            None => Err("not a known OpenClaw record (first line matches no reader)".into()),
        },
        Err(e) => Err(format!("cannot read: {e}")),
    }
}

/// Finds the sources under `paths`.
///
/// Errors: a path that does not exist. Unreadable files inside a walked
/// directory are reported as skipped, not as errors.
pub fn discover(paths: &[PathBuf]) -> io::Result<Discovery> {
    let mut discovery = Discovery::default();
    for path in paths {
        let metadata = std::fs::metadata(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        if metadata.is_file() {
            match classify(path, true) {
                Ok(kind) => discovery.sources.push(Source {
                    path: path.clone(),
                    kind,
                    size: metadata.len(),
                }),
                Err(reason) => discovery.skipped.push(SkippedFile {
                    path: path.clone(),
                    reason,
                }),
            }
            continue;
        }
        // Walk first, then classify: classifying a JSONL file with no
        // telling name opens it and reads its first line, which for
        // thousands of transcripts is worth all the cores.
        // A walk error is kept in its place (its reason instead of a size),
        // so skipped files are listed in walk order as before.
        let mut files: Vec<(PathBuf, Result<u64, String>)> = Vec::new();
        for entry in WalkDir::new(path).sort_by_file_name() {
            match entry {
                Ok(entry) if entry.file_type().is_file() => {
                    let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                    files.push((entry.into_path(), Ok(size)));
                }
                Ok(_) => {}
                Err(e) => files.push((
                    e.path()
                        .map(Path::to_path_buf)
                        .unwrap_or_else(|| path.clone()),
                    Err(e.to_string()),
                )),
            }
        }
        let kinds = crate::on_cores::map_on_cores(
            &files,
            64,
            |(path, walked)| match walked {
                Ok(_) => classify(path, false),
                Err(reason) => Err(reason.clone()),
            },
            || Err("cannot classify (internal error)".to_string()),
        );
        for ((path, walked), kind) in files.into_iter().zip(kinds) {
            let size = walked.unwrap_or(0);
            match kind {
                Ok(kind) => discovery.sources.push(Source { path, kind, size }),
                Err(reason) if reason.is_empty() => {}
                Err(reason) => discovery.skipped.push(SkippedFile { path, reason }),
            }
        }
    }
    // Bundles are read through their manifest; their events.jsonl is not a
    // source of its own.
    let bundles: Vec<PathBuf> = discovery
        .sources
        .iter()
        .filter(|s| s.kind == SourceKind::ExportBundle)
        .filter_map(|s| s.path.parent().map(Path::to_path_buf))
        .collect();
    discovery.sources.retain(|s| {
        s.kind == SourceKind::ExportBundle || !bundles.iter().any(|b| s.path.starts_with(b))
    });
    discovery.sources.sort_by(|a, b| {
        let config_first = |s: &Source| s.kind != SourceKind::Config;
        (config_first(a), &a.path).cmp(&(config_first(b), &b.path))
    });
    discovery.sources.dedup_by(|a, b| a.path == b.path);
    Ok(discovery)
}

/// The agent id from an OpenClaw path `…/agents/<agentId>/sessions/<file>`
/// or `…/agents/<agentId>/agent/<file>`.
pub fn agent_id_from_path(path: &Path) -> Option<String> {
    let parts: Vec<&str> = path.iter().filter_map(|p| p.to_str()).collect();
    parts
        .windows(3)
        .rev()
        .find(|w| w[0] == "agents" && (w[2] == "sessions" || w[2] == "agent"))
        .map(|w| w[1].to_string())
}

/// The session id hint from a file name: the part before `.trajectory.jsonl`
/// or `.jsonl`.
pub fn session_id_from_file_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name
        .find(".trajectory.jsonl")
        .or_else(|| name.find(".jsonl"))
    {
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
    fn walking_classifies_sources_and_skips_unknown_jsonl() {
        let dir = tempfile::tempdir().unwrap();
        let sessions = dir.path().join("agents/main/sessions");
        std::fs::create_dir_all(&sessions).unwrap();
        let header = "{\"type\":\"session\",\"id\":\"a\"}\n";
        std::fs::write(sessions.join("a.jsonl"), header).unwrap();
        std::fs::write(sessions.join("other.jsonl"), "{\"hello\":1}\n").unwrap();
        std::fs::write(sessions.join("a.trajectory.jsonl"), "{}\n").unwrap();
        std::fs::write(sessions.join("sessions.json"), "{}").unwrap();
        std::fs::write(sessions.join("notes.txt"), "x").unwrap();
        let found = discover(&[dir.path().to_path_buf()]).unwrap();
        let kinds: Vec<(String, SourceKind)> = found
            .sources
            .iter()
            .map(|s| {
                (
                    s.path.file_name().unwrap().to_string_lossy().into_owned(),
                    s.kind,
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("a.jsonl".to_string(), SourceKind::Transcript),
                (
                    "a.trajectory.jsonl".to_string(),
                    SourceKind::TrajectoryEvents
                ),
                ("sessions.json".to_string(), SourceKind::SessionStore),
            ]
        );
        assert_eq!(found.skipped.len(), 1);
        assert!(found.skipped[0].path.ends_with("other.jsonl"));
        assert!(discover(&[dir.path().join("missing")]).is_err());
    }
}
