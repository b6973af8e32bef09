//! The disk spool: when PostgreSQL is unreachable, each batch is written to its own file and
//! replayed, oldest first, once the database is back. Memory stays bounded during an outage, and
//! so does the disk: past `max_bytes` the oldest batches are dropped (counted and logged), so a
//! long outage costs the oldest events rather than the sensor's disk.
//!
//! Files are `NNNNNNNNNNNNNNNNNNNN-ROWS.jsonl` (one JSON store item per line), mode 0600 in a 0700
//! directory, written under a temporary name, synced, renamed, and the directory synced. A file
//! that cannot be read back is moved to `corrupt/` beside them instead of blocking the rest.

use crate::writer::StoreItem;
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Subdirectory where unreadable spool files are moved.
pub const CORRUPT_DIR: &str = "corrupt";

#[derive(Debug)]
struct SpoolFile {
    seq: u64,
    path: PathBuf,
    bytes: u64,
    rows: u64,
}

/// A directory of spooled batches.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    files: VecDeque<SpoolFile>,
    next_seq: u64,
    bytes: u64,
    max_bytes: u64,
}

/// What reading the oldest batch gave.
#[derive(Debug)]
pub enum Oldest {
    /// Nothing is spooled.
    Empty,
    /// The batch.
    Batch(Vec<StoreItem>),
    /// The file could not be read back; it was moved to `path` (and is no longer spooled).
    Corrupt {
        /// Where it is now.
        path: PathBuf,
        /// Why it was unreadable.
        error: String,
    },
}

/// Batches dropped to keep the spool within its bound.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Files removed.
    pub batches: u64,
    /// Rows they held.
    pub rows: u64,
}

impl Spool {
    /// Opens (creating, 0700) the spool directory, removes temporary files a crash left, and
    /// indexes the batches an earlier run left.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<Self> {
        create_private_dir(dir)?;
        let mut files = Vec::new();
        for entry in fs::read_dir(dir)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                tracing::info!(file = %entry.path().display(), "removing an unfinished spool file");
                fs::remove_file(entry.path())?;
                continue;
            }
            let Some(stem) = name.strip_suffix(".jsonl") else {
                continue;
            };
            let (seq, rows) = match stem.split_once('-') {
                Some((s, r)) => (s.parse::<u64>().ok(), r.parse::<u64>().ok()),
                None => (stem.parse::<u64>().ok(), None),
            };
            let Some(seq) = seq else { continue };
            let path = entry.path();
            let bytes = entry.metadata()?.len();
            let rows = match rows {
                Some(r) => r,
                None => count_lines(&path)?,
            };
            files.push(SpoolFile {
                seq,
                path,
                bytes,
                rows,
            });
        }
        files.sort_by_key(|f| f.seq);
        let next_seq = files.last().map_or(0, |f| f.seq + 1);
        let bytes = files.iter().map(|f| f.bytes).sum();
        Ok(Spool {
            dir: dir.to_owned(),
            files: files.into(),
            next_seq,
            bytes,
            max_bytes,
        })
    }

    /// Number of batches waiting.
    pub fn pending(&self) -> usize {
        self.files.len()
    }

    /// Rows waiting.
    pub fn pending_rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// True when nothing waits for replay.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Appends a batch as a new file, then drops the oldest batches while the spool is over its
    /// bound (never the batch just written).
    pub fn append(&mut self, items: &[StoreItem]) -> io::Result<Dropped> {
        let seq = self.next_seq;
        let file = self.write_file(seq, items)?;
        self.next_seq += 1;
        self.bytes += file.bytes;
        self.files.push_back(file);
        let mut dropped = Dropped::default();
        while self.bytes > self.max_bytes && self.files.len() > 1 {
            if let Some(old) = self.files.pop_front() {
                self.bytes = self.bytes.saturating_sub(old.bytes);
                dropped.batches += 1;
                dropped.rows += old.rows;
                fs::remove_file(&old.path)?;
            }
        }
        Ok(dropped)
    }

    fn write_file(&self, seq: u64, items: &[StoreItem]) -> io::Result<SpoolFile> {
        let path = self.dir.join(format!("{seq:020}-{}.jsonl", items.len()));
        let tmp = self.dir.join(format!("{seq:020}.tmp"));
        let bytes = {
            let f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            let mut w = BufWriter::new(f);
            for item in items {
                serde_json::to_writer(&mut w, item)?;
                w.write_all(b"\n")?;
            }
            let file = w.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            file.metadata()?.len()
        };
        fs::rename(&tmp, &path)?;
        sync_dir(&self.dir)?;
        Ok(SpoolFile {
            seq,
            path,
            bytes,
            rows: items.len() as u64,
        })
    }

    /// Reads the oldest batch without removing it; an unreadable file is moved aside.
    pub fn peek_oldest(&mut self) -> io::Result<Oldest> {
        let Some(front) = self.files.front() else {
            return Ok(Oldest::Empty);
        };
        let read = read_batch(&front.path).and_then(|items| {
            if items.len() as u64 == front.rows {
                Ok(items)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("truncated: {} of {} rows", items.len(), front.rows),
                ))
            }
        });
        match read {
            Ok(items) => Ok(Oldest::Batch(items)),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                let corrupt = self.dir.join(CORRUPT_DIR);
                create_private_dir(&corrupt)?;
                let to = corrupt.join(front.path.file_name().unwrap_or_default());
                fs::rename(&front.path, &to)?;
                sync_dir(&self.dir)?;
                if let Some(f) = self.files.pop_front() {
                    self.bytes = self.bytes.saturating_sub(f.bytes);
                }
                Ok(Oldest::Corrupt {
                    path: to,
                    error: e.to_string(),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Removes the oldest batch once it is safely in the database.
    pub fn pop_oldest(&mut self) -> io::Result<()> {
        if let Some(f) = self.files.pop_front() {
            self.bytes = self.bytes.saturating_sub(f.bytes);
            fs::remove_file(&f.path)?;
        }
        Ok(())
    }

    /// Replaces the oldest batch by what is left of it (part of it reached the database before an
    /// outage), keeping its place in the order.
    pub fn replace_oldest(&mut self, rest: &[StoreItem]) -> io::Result<()> {
        let Some(seq) = self.files.front().map(|f| f.seq) else {
            return Ok(());
        };
        let file = self.write_file(seq, rest)?;
        if let Some(old) = self.files.pop_front() {
            self.bytes = self.bytes.saturating_sub(old.bytes);
            if old.path != file.path {
                fs::remove_file(&old.path)?;
            }
        }
        self.bytes += file.bytes;
        self.files.push_front(file);
        Ok(())
    }
}

/// Creates `dir` if needed and makes it private (0700).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

/// Makes a rename in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn read_batch(path: &Path) -> io::Result<Vec<StoreItem>> {
    let data = fs::read(path)?;
    if !data.is_empty() && !data.ends_with(b"\n") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "truncated: the last line is incomplete",
        ));
    }
    let mut items = Vec::new();
    for (n, line) in data.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        items.push(serde_json::from_slice(line).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("line {}: {e}", n + 1))
        })?);
    }
    Ok(items)
}

fn count_lines(path: &Path) -> io::Result<u64> {
    let mut n = 0;
    for line in BufReader::new(File::open(path)?).split(b'\n') {
        if !line?.is_empty() {
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditRecord;
    use std::os::unix::fs::MetadataExt;

    fn item(n: i64) -> StoreItem {
        StoreItem::Audit(AuditRecord {
            ts: chrono::DateTime::from_timestamp(n, 0).unwrap(),
            token_id: Some(n),
            token_name: None,
            method: "tools/call".into(),
            tool: None,
            status: "ok".into(),
            http_status: 200,
            duration_us: 1,
            client_addr: None,
            user_agent: None,
            session_id: None,
            error: None,
            arguments: None,
        })
    }

    fn first_id(o: Oldest) -> Option<i64> {
        match o {
            Oldest::Batch(b) => match b.first() {
                Some(StoreItem::Audit(a)) => a.token_id,
                _ => None,
            },
            _ => None,
        }
    }

    #[test]
    fn batches_come_back_in_order_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), u64::MAX).unwrap();
        s.append(&[item(1), item(2)]).unwrap();
        s.append(&[item(3)]).unwrap();
        drop(s);
        let mut s = Spool::open(dir.path(), u64::MAX).unwrap();
        assert_eq!(s.pending(), 2);
        assert_eq!(s.pending_rows(), 3);
        assert_eq!(first_id(s.peek_oldest().unwrap()), Some(1));
        s.pop_oldest().unwrap();
        s.append(&[item(4)]).unwrap();
        assert_eq!(first_id(s.peek_oldest().unwrap()), Some(3));
        s.pop_oldest().unwrap();
        assert_eq!(first_id(s.peek_oldest().unwrap()), Some(4));
    }

    #[test]
    fn files_are_private_and_leftover_temporaries_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("spool");
        fs::create_dir(&spool).unwrap();
        fs::set_permissions(&spool, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(spool.join("00000000000000000007.tmp"), b"half").unwrap();
        let mut s = Spool::open(&spool, u64::MAX).unwrap();
        assert!(!spool.join("00000000000000000007.tmp").exists());
        assert_eq!(fs::metadata(&spool).unwrap().mode() & 0o777, 0o700);
        s.append(&[item(1)]).unwrap();
        let f = fs::read_dir(&spool).unwrap().next().unwrap().unwrap();
        assert_eq!(f.metadata().unwrap().mode() & 0o777, 0o600);
    }

    #[test]
    fn over_the_bound_the_oldest_batches_are_dropped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), u64::MAX).unwrap();
        s.append(&[item(1), item(2)]).unwrap();
        let one = s.bytes();
        let mut s = Spool::open(dir.path(), one * 2 + one / 2).unwrap();
        assert_eq!(s.append(&[item(3), item(4)]).unwrap(), Dropped::default());
        let dropped = s.append(&[item(5), item(6)]).unwrap();
        assert_eq!(
            dropped,
            Dropped {
                batches: 1,
                rows: 2
            }
        );
        assert_eq!(s.pending(), 2);
        assert!(s.bytes() <= one * 2 + one / 2);
        assert_eq!(first_id(s.peek_oldest().unwrap()), Some(3));
    }

    #[test]
    fn corrupt_and_truncated_files_are_moved_aside_and_the_rest_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), u64::MAX).unwrap();
        s.append(&[item(1)]).unwrap();
        s.append(&[item(2)]).unwrap();
        s.append(&[item(3)]).unwrap();
        drop(s);
        let mut names: Vec<PathBuf> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        fs::write(&names[0], b"{not json}\n").unwrap();
        let text = fs::read(&names[1]).unwrap();
        fs::write(&names[1], &text[..text.len() - 5]).unwrap();
        let mut s = Spool::open(dir.path(), u64::MAX).unwrap();
        assert!(matches!(s.peek_oldest().unwrap(), Oldest::Corrupt { .. }));
        match s.peek_oldest().unwrap() {
            Oldest::Corrupt { path, error } => {
                assert!(path.starts_with(dir.path().join(CORRUPT_DIR)));
                assert!(error.contains("truncated"), "{error}");
            }
            other => panic!("expected a corrupt file, got {other:?}"),
        }
        assert_eq!(first_id(s.peek_oldest().unwrap()), Some(3));
        assert_eq!(
            fs::read_dir(dir.path().join(CORRUPT_DIR)).unwrap().count(),
            2
        );
    }

    #[test]
    fn a_partly_written_batch_keeps_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), u64::MAX).unwrap();
        s.append(&[item(1), item(2), item(3)]).unwrap();
        s.append(&[item(4)]).unwrap();
        s.replace_oldest(&[item(2), item(3)]).unwrap();
        drop(s);
        let mut s = Spool::open(dir.path(), u64::MAX).unwrap();
        assert_eq!(s.pending_rows(), 3);
        assert_eq!(first_id(s.peek_oldest().unwrap()), Some(2));
    }
}
