//! Where input comes from: files, directories (recursively, rotated logs included), stdin; gzip
//! recognised by its magic bytes, whatever the file is called.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Error;

/// One input to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Standard input (`-`).
    Stdin,
    /// A file.
    File(PathBuf),
}

impl Input {
    /// How reports name it: the path, or `-`.
    pub fn name(&self) -> String {
        match self {
            Input::Stdin => "-".into(),
            Input::File(p) => p.display().to_string(),
        }
    }

    /// Size on disk, when known.
    pub fn size(&self) -> Option<u64> {
        match self {
            Input::Stdin => None,
            Input::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
        }
    }
}

/// Expands command-line paths: `-` is stdin, a directory is every audit-looking file under it
/// (sorted), a file is itself. A path that does not exist is an error.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<Input>, Error> {
    let mut inputs = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            inputs.push(Input::Stdin);
            continue;
        }
        let meta = std::fs::metadata(p).map_err(|source| Error::Input {
            path: p.clone(),
            source,
        })?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found)?;
            found.sort();
            inputs.extend(found.into_iter().map(Input::File));
        } else {
            inputs.push(Input::File(p.clone()));
        }
    }
    Ok(inputs)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Input {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| Error::Input {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let kind = entry.file_type().map_err(|source| Error::Input {
            path: path.clone(),
            source,
        })?;
        if kind.is_dir() {
            walk(&path, out)?;
        } else if looks_like_input(&name) {
            out.push(path);
        }
    }
    Ok(())
}

/// Whether a file found in a directory is audit or purpose input: `*.log`, `*.json`,
/// `*.jsonl`, `*.ndjson`, `*.yaml`, `*.yml`, each maybe `.gz`, and rotated logs
/// (`audit.log.1`, `audit-2026-11-20T10-00-00.log.gz`).
pub fn looks_like_input(name: &str) -> bool {
    let mut stem = name.strip_suffix(".gz").unwrap_or(name);
    // a numeric rotation suffix: audit.log.1
    if let Some((head, n)) = stem.rsplit_once('.')
        && !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit())
    {
        stem = head;
    }
    [".log", ".json", ".jsonl", ".ndjson", ".yaml", ".yml"]
        .iter()
        .any(|ext| stem.ends_with(ext))
}

/// Counts bytes read from the underlying file (for the progress bar).
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

const BUF: usize = 256 << 10;

/// Bytes [`read_lines`] asks for at a time: at least the readers' buffer, so `BufReader` hands
/// the read straight to the file or decoder instead of copying through its buffer.
pub(crate) const BLOCK: usize = BUF;

/// Opens an input, decompressing gzip (by magic bytes); raw bytes read are added to `read`.
pub fn open(input: &Input, read: Arc<AtomicU64>) -> io::Result<Box<dyn BufRead + Send>> {
    let raw: Box<dyn Read + Send> = match input {
        Input::Stdin => Box::new(io::stdin()),
        Input::File(p) => Box::new(File::open(p)?),
    };
    open_reader(raw, read)
}

/// Opens a stream as [`open`] opens a file: gzip decompressed (by magic bytes), raw bytes read
/// added to `read`.
pub fn open_reader(
    raw: Box<dyn Read + Send>,
    read: Arc<AtomicU64>,
) -> io::Result<Box<dyn BufRead + Send>> {
    let mut buffered = BufReader::with_capacity(BUF, Counting { inner: raw, read });
    let head = buffered.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(BufReader::with_capacity(
            BUF,
            flate2::bufread::MultiGzDecoder::new(buffered),
        )))
    } else {
        Ok(Box::new(buffered))
    }
}

/// What [`read_lines`] hands on.
#[derive(Debug)]
pub(crate) enum Piece {
    /// Lines back to back in `data`; `lines` holds each one's number (1-based) and range,
    /// without its `\n`.
    Lines {
        data: Vec<u8>,
        lines: Vec<(u64, usize, usize)>,
    },
    /// Line `n` was longer than the limit: skipped without being held in memory.
    TooLong(u64),
    /// Reading failed at line `n`; nothing more is read.
    Failed(u64, io::Error),
}

/// How [`read_lines`] cuts its input.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cut {
    /// Lines per [`Piece::Lines`] (the last one may have fewer).
    pub(crate) lines: usize,
    /// Longest line kept.
    pub(crate) max_line: usize,
    /// Bytes asked of the reader at a time.
    pub(crate) block: usize,
}

/// Reads lines in chunks of `cut.lines`, straight into each chunk's buffer: the reader's
/// blocks land where the worker reads them, and newlines are found with a vectorised search.
/// Each chunk's buffer comes from `buffer` (an empty buffer of at least that capacity). Stops
/// early when `stop` says so.
pub(crate) fn read_lines(
    reader: &mut dyn Read,
    cut: Cut,
    stop: &dyn Fn() -> bool,
    buffer: &mut dyn FnMut(usize) -> Vec<u8>,
    emit: &mut dyn FnMut(Piece),
) {
    // About 1.3 KB per line of a Metadata audit log; later chunks are sized like the one before.
    let mut data = buffer(cut.lines.saturating_mul(1400).min(64 << 20));
    let mut lines = Vec::with_capacity(cut.lines);
    let mut n = 0u64; // lines seen
    let mut line_start = 0; // where the line being read starts in `data`
    let mut searched = 0; // bytes of `data` searched for newlines
    let mut too_long = false; // the line being read passed the limit and is being skipped
    loop {
        let mut full = false;
        let base = searched;
        for newline in memchr::memchr_iter(b'\n', &data[base..]) {
            let end = base + newline;
            n += 1;
            if too_long || end - line_start > cut.max_line {
                emit(Piece::TooLong(n));
                too_long = false;
            } else {
                lines.push((n, line_start, end));
            }
            line_start = end + 1;
            if lines.len() >= cut.lines {
                full = true;
                break;
            }
        }
        if full {
            // What follows the chunk's last line starts the next chunk, searched again.
            let mut next = buffer(line_start + line_start / 16 + cut.block);
            next.extend_from_slice(&data[line_start..]);
            data.truncate(line_start);
            let chunk = std::mem::replace(&mut data, next);
            emit_lines(
                emit,
                chunk,
                std::mem::replace(&mut lines, Vec::with_capacity(cut.lines)),
            );
            (line_start, searched) = (0, 0);
            continue;
        }
        searched = data.len();
        if data.len() - line_start > cut.max_line {
            too_long = true;
        }
        if too_long {
            data.truncate(line_start);
            searched = line_start;
        }
        if stop() {
            return;
        }
        let len = data.len();
        data.resize(len + cut.block, 0);
        let got = loop {
            match reader.read(&mut data[len..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        data.truncate(len + *got.as_ref().unwrap_or(&0));
        match got {
            Ok(0) => {
                if too_long {
                    emit(Piece::TooLong(n + 1));
                } else if line_start < data.len() {
                    lines.push((n + 1, line_start, data.len()));
                }
                emit_lines(emit, data, lines);
                return;
            }
            Ok(_) => {}
            Err(e) => {
                emit_lines(emit, data, lines);
                emit(Piece::Failed(n + 1, e));
                return;
            }
        }
    }
}

fn emit_lines(emit: &mut dyn FnMut(Piece), data: Vec<u8>, lines: Vec<(u64, usize, usize)>) {
    if !lines.is_empty() {
        emit(Piece::Lines { data, lines });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_files_that_are_input() {
        for (name, want) in [
            ("audit.log", true),
            ("audit.log.1", true),
            ("audit.log.12.gz", true),
            ("audit-2026-11-20T10-00-00.log.gz", true),
            ("events.json", true),
            ("purposes.jsonl", true),
            ("batch.ndjson.gz", true),
            ("events.yaml", true),
            ("audit2rbac.yml.gz", true),
            ("README.md", false),
            ("audit.log.bak", false),
            ("notes.txt.1", false),
        ] {
            assert_eq!(looks_like_input(name), want, "{name}");
        }
    }

    /// What [`read_lines`] makes of `text`: each chunk's lines as `n:text`, chunks between
    /// `|`, then the numbers of the lines too long.
    fn pieces(text: &[u8], lines: usize, max_line: usize, block: usize) -> String {
        let (mut chunks, mut too_long) = (Vec::new(), Vec::new());
        let cut = Cut {
            lines,
            max_line,
            block,
        };
        read_lines(
            &mut &text[..],
            cut,
            &|| false,
            &mut Vec::with_capacity,
            &mut |piece| match piece {
                Piece::Lines { data, lines } => chunks.push(
                    lines
                        .into_iter()
                        .map(|(n, start, end)| {
                            format!("{n}:{}", String::from_utf8_lossy(&data[start..end]))
                        })
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
                Piece::TooLong(n) => too_long.push(n.to_string()),
                Piece::Failed(n, e) => panic!("{n}: {e}"),
            },
        );
        format!("{} / too long: {}", chunks.join(" | "), too_long.join(" "))
    }

    #[test]
    fn lines_are_cut_into_chunks_and_overlong_ones_skipped() {
        let text = b"short\n0123456789abcdef\n\nlast";
        // Whatever the block size: a line across blocks, a block ending on a newline, ...
        for block in [1, 2, 3, 5, 8, 64] {
            let cases: [(&[u8], usize, &str); 7] = [
                (text, 10, "1:short 3: 4:last / too long: 2"),
                (text, 2, "1:short 3: | 4:last / too long: 2"),
                (text, 1, "1:short | 3: | 4:last / too long: 2"),
                // A final newline adds no line; an overlong last line is still reported.
                (b"a\nb\n", 10, "1:a 2:b / too long: "),
                (b"a\n0123456789", 10, "1:a / too long: 2"),
                // Exactly the limit is kept.
                (b"01234567\n", 10, "1:01234567 / too long: "),
                (b"", 10, " / too long: "),
            ];
            for (text, lines, want) in cases {
                assert_eq!(
                    pieces(text, lines, 8, block),
                    want,
                    "block {block}: {}",
                    String::from_utf8_lossy(text)
                );
            }
        }
    }

    #[test]
    fn a_read_error_is_reported_with_the_line_it_stopped_at() {
        struct Failing<'a>(&'a [u8]);
        impl Read for Failing<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() {
                    return Err(io::Error::other("disk on fire"));
                }
                let n = buf.len().min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = Vec::new();
        let cut = Cut {
            lines: 10,
            max_line: 100,
            block: 4,
        };
        read_lines(
            &mut Failing(b"one\ntwo\nthr"),
            cut,
            &|| false,
            &mut Vec::with_capacity,
            &mut |piece| {
                out.push(match piece {
                    Piece::Lines { lines, .. } => format!("{} lines", lines.len()),
                    Piece::TooLong(n) => format!("{n}: too long"),
                    Piece::Failed(n, e) => format!("{n}: {e}"),
                })
            },
        );
        assert_eq!(out, ["2 lines", "3: disk on fire"]);
    }
}
