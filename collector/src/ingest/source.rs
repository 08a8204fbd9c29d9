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
/// `*.jsonl`, `*.ndjson`, each maybe `.gz`, and rotated logs (`audit.log.1`,
/// `audit-2026-11-20T10-00-00.log.gz`).
pub fn looks_like_input(name: &str) -> bool {
    let mut stem = name.strip_suffix(".gz").unwrap_or(name);
    // a numeric rotation suffix: audit.log.1
    if let Some((head, n)) = stem.rsplit_once('.')
        && !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit())
    {
        stem = head;
    }
    [".log", ".json", ".jsonl", ".ndjson"]
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

const BUF: usize = 1 << 20;

/// Opens an input, decompressing gzip (by magic bytes); raw bytes read are added to `read`.
pub fn open(input: &Input, read: Arc<AtomicU64>) -> io::Result<Box<dyn BufRead + Send>> {
    let raw: Box<dyn Read + Send> = match input {
        Input::Stdin => Box::new(io::stdin()),
        Input::File(p) => Box::new(File::open(p)?),
    };
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

/// How reading one line went.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line was appended to the buffer (without its `\n`).
    Read,
    /// The line was longer than the limit: skipped, nothing appended.
    TooLong,
    /// End of input.
    End,
}

/// Appends the next line to `buf` unless it is longer than `max` bytes, in which case it is
/// skipped without being held in memory.
pub fn read_line(r: &mut dyn BufRead, buf: &mut Vec<u8>, max: usize) -> io::Result<Line> {
    let start = buf.len();
    let mut too_long = false;
    let mut any = false;
    loop {
        let chunk = match r.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            break;
        }
        any = true;
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (chunk.len(), false),
        };
        if !too_long {
            if buf.len() - start + take > max {
                too_long = true;
                buf.truncate(start);
            } else {
                buf.extend_from_slice(&chunk[..take]);
            }
        }
        r.consume(if done { take + 1 } else { take });
        if done {
            break;
        }
    }
    Ok(match (any, too_long) {
        (false, _) => Line::End,
        (true, true) => Line::TooLong,
        (true, false) => Line::Read,
    })
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
            ("README.md", false),
            ("audit.log.bak", false),
            ("notes.txt.1", false),
        ] {
            assert_eq!(looks_like_input(name), want, "{name}");
        }
    }

    #[test]
    fn lines_are_read_and_overlong_ones_skipped() {
        let text = b"short\n0123456789abcdef\nlast";
        let mut r = BufReader::with_capacity(4, &text[..]);
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut r, &mut buf, 8).unwrap(), Line::Read);
        assert_eq!(buf, b"short");
        buf.clear();
        assert_eq!(read_line(&mut r, &mut buf, 8).unwrap(), Line::TooLong);
        assert!(buf.is_empty());
        assert_eq!(read_line(&mut r, &mut buf, 8).unwrap(), Line::Read);
        assert_eq!(buf, b"last");
        buf.clear();
        assert_eq!(read_line(&mut r, &mut buf, 8).unwrap(), Line::End);
    }
}
