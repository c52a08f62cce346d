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
    /// What a line is read into, reused across lines.
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
        match read_through_newline(&mut self.reader, &mut self.buffer) {
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

/// `BufRead::read_until(b'\n', buffer)`, searching with the memchr crate
/// (std's portable search was 3 % of a transcript reader's time). Returns
/// the bytes appended, 0 at the end of input.
///
/// Errors: the reader's, except `Interrupted`, which is retried.
fn read_through_newline<R: BufRead>(reader: &mut R, buffer: &mut Vec<u8>) -> io::Result<usize> {
    let mut read = 0;
    loop {
        let (found, used) = {
            let available = match reader.fill_buf() {
                Ok(available) => available,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            match memchr::memchr(b'\n', available) {
                Some(at) => {
                    buffer.extend_from_slice(&available[..=at]);
                    (true, at + 1)
                }
                None => {
                    buffer.extend_from_slice(available);
                    (available.is_empty(), available.len())
                }
            }
        };
        reader.consume(used);
        read += used;
        if found {
            return Ok(read);
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

    /// A reader that hands out at most 3 bytes per read and is interrupted
    /// before every other read.
    struct Choppy<'a> {
        data: &'a [u8],
        interrupt: bool,
    }

    impl io::Read for Choppy<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = self.data.len().min(out.len()).min(3);
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn lines_across_reads_and_interruptions_are_the_lines_of_the_whole() {
        let data = b"{\"a\":\"long enough to span reads\"}\r\n\n\n{\"b\":2}\nlast";
        let whole: Vec<(u64, Vec<u8>, bool)> = Lines::new(&data[..])
            .map(|l| l.unwrap())
            .map(|l| (l.offset, l.bytes, l.terminated))
            .collect();
        let reader = io::BufReader::with_capacity(
            4,
            Choppy {
                data,
                interrupt: false,
            },
        );
        let chopped: Vec<(u64, Vec<u8>, bool)> = Lines::new(reader)
            .map(|l| l.unwrap())
            .map(|l| (l.offset, l.bytes, l.terminated))
            .collect();
        assert_eq!(chopped, whole);
        assert_eq!(whole.len(), 5);
        assert_eq!(whole[4], (data.len() as u64 - 4, b"last".to_vec(), false));
    }
}
