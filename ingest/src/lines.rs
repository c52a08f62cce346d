//! Splitting a JSONL byte stream into lines with their byte offsets.
//!
//! A line is the bytes up to (not including) `\n`; a trailing `\r` is dropped.
//! The last line may lack its `\n`: it is then reported as `terminated: false`
//! so the caller can tell a truncated write from a complete record.

use std::io::{self, BufRead};

/// One physical line of a JSONL file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Byte offset of the first byte of the line in the (decompressed) stream.
    pub offset: u64,
    /// 1-based line number.
    pub number: u64,
    /// The line's bytes without `\n` / `\r\n`.
    pub bytes: Vec<u8>,
    /// Whether the line ended with `\n`.
    pub terminated: bool,
    /// Bytes the line took in the stream, terminator included.
    pub len: u64,
}

impl Line {
    /// The line's exact bytes in the stream, terminator included.
    pub fn raw_bytes(&self) -> Vec<u8> {
        let mut raw = self.bytes.clone();
        raw.extend_from_slice(self.terminator());
        raw
    }

    /// The terminator the stream had after [`Line::bytes`]: `\r\n`, `\n` or
    /// nothing (the last line of a file without a final newline).
    pub fn terminator(&self) -> &'static [u8] {
        match self.len.saturating_sub(self.bytes.len() as u64) {
            2 => b"\r\n",
            1 => b"\n",
            _ => b"",
        }
    }
}

/// Iterates over the lines of a reader. I/O errors end the iteration with `Err`.
pub struct Lines<R> {
    reader: R,
    offset: u64,
    number: u64,
    /// What `read_until` reads into, reused across lines.
    buffer: Vec<u8>,
}

impl<R: BufRead> Lines<R> {
    pub fn new(reader: R) -> Lines<R> {
        Lines::starting_at(reader, 0, 0)
    }

    /// Lines of a reader already positioned at byte `offset`, after `lines_before` lines.
    pub fn starting_at(reader: R, offset: u64, lines_before: u64) -> Lines<R> {
        Lines {
            reader,
            offset,
            number: lines_before,
            // Most lines fit: one allocation per file instead of a run of
            // doublings into fresh memory.
            buffer: Vec::with_capacity(64 * 1024),
        }
    }
}

impl<R: BufRead> Iterator for Lines<R> {
    type Item = io::Result<Line>;

    fn next(&mut self) -> Option<io::Result<Line>> {
        // Read into the reused buffer (it grows once to the longest line),
        // then copy the line out at its exact size: reading into a fresh
        // `Vec` would grow it by doubling, copying a long line about twice.
        self.buffer.clear();
        match self.reader.read_until(b'\n', &mut self.buffer) {
            Ok(0) => None,
            Ok(n) => {
                let offset = self.offset;
                self.offset += n as u64;
                self.number += 1;
                let terminated = self.buffer.last() == Some(&b'\n');
                let mut end = self.buffer.len();
                if terminated {
                    end -= 1;
                    if end > 0 && self.buffer[end - 1] == b'\r' {
                        end -= 1;
                    }
                }
                let bytes = self.buffer[..end].to_vec();
                Some(Ok(Line {
                    offset,
                    number: self.number,
                    bytes,
                    terminated,
                    len: n as u64,
                }))
            }
            Err(e) => Some(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_numbers_and_termination() {
        let data = b"{\"a\":1}\r\n\n{\"b\":2}\n{\"c\"";
        let lines: Vec<Line> = Lines::new(&data[..]).map(|l| l.unwrap()).collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0].bytes, b"{\"a\":1}");
        assert_eq!(lines[1].offset, 9);
        assert!(lines[1].bytes.is_empty());
        assert_eq!(lines[2].offset, 10);
        assert_eq!(lines[2].number, 3);
        assert!(lines[2].terminated);
        assert_eq!(lines[3].bytes, b"{\"c\"");
        assert!(!lines[3].terminated);
        assert_eq!(lines[0].raw_bytes(), b"{\"a\":1}\r\n");
        assert_eq!(lines[0].len, 9);
        assert_eq!(lines[3].raw_bytes(), b"{\"c\"");
    }
}
