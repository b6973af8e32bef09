//! The disk spool: when PostgreSQL is unreachable, each batch is written to its own file and
//! replayed, oldest first, once the database is back. Memory stays bounded during an outage.

use crate::writer::StoreItem;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

/// A directory of spooled batches, `NNNNNNNNNNNNNNNNNNNN.jsonl`, written atomically.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    files: std::collections::VecDeque<(u64, PathBuf)>,
    next_seq: u64,
}

impl Spool {
    /// Opens (creating) the spool directory and indexes batches left by an earlier run.
    pub fn open(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let mut files: Vec<(u64, PathBuf)> = fs::read_dir(dir)?
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let seq = name.strip_suffix(".jsonl")?.parse::<u64>().ok()?;
                Some((seq, e.path()))
            })
            .collect();
        files.sort();
        let next_seq = files.last().map_or(0, |(s, _)| s + 1);
        Ok(Spool {
            dir: dir.to_owned(),
            files: files.into(),
            next_seq,
        })
    }

    /// Number of batches waiting.
    pub fn pending(&self) -> usize {
        self.files.len()
    }

    /// True when nothing waits for replay.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Appends a batch as a new file (write to a temporary name, fsync, rename).
    pub fn append(&mut self, items: &[StoreItem]) -> io::Result<()> {
        let seq = self.next_seq;
        let path = self.dir.join(format!("{seq:020}.jsonl"));
        let tmp = self.dir.join(format!("{seq:020}.tmp"));
        {
            let mut w = BufWriter::new(File::create(&tmp)?);
            for item in items {
                serde_json::to_writer(&mut w, item)?;
                w.write_all(b"\n")?;
            }
            let file = w.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
        }
        fs::rename(&tmp, &path)?;
        self.next_seq += 1;
        self.files.push_back((seq, path));
        Ok(())
    }

    /// Reads the oldest batch without removing it.
    pub fn peek_oldest(&self) -> io::Result<Option<Vec<StoreItem>>> {
        let Some((_, path)) = self.files.front() else {
            return Ok(None);
        };
        let mut items = Vec::new();
        for line in BufReader::new(File::open(path)?).lines() {
            let line = line?;
            if line.is_empty() {
                continue;
            }
            items.push(
                serde_json::from_str(&line)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
            );
        }
        Ok(Some(items))
    }

    /// Removes the oldest batch once it is safely in the database.
    pub fn pop_oldest(&mut self) -> io::Result<()> {
        if let Some((_, path)) = self.files.pop_front() {
            fs::remove_file(path)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditRecord;

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
        })
    }

    #[test]
    fn batches_come_back_in_order_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path()).unwrap();
        s.append(&[item(1), item(2)]).unwrap();
        s.append(&[item(3)]).unwrap();
        drop(s);
        let mut s = Spool::open(dir.path()).unwrap();
        assert_eq!(s.pending(), 2);
        let first = s.peek_oldest().unwrap().unwrap();
        assert_eq!(first.len(), 2);
        s.pop_oldest().unwrap();
        s.append(&[item(4)]).unwrap();
        let second = s.peek_oldest().unwrap().unwrap();
        assert!(matches!(&second[0], StoreItem::Audit(a) if a.token_id == Some(3)));
        s.pop_oldest().unwrap();
        let third = s.peek_oldest().unwrap().unwrap();
        assert!(matches!(&third[0], StoreItem::Audit(a) if a.token_id == Some(4)));
    }
}
