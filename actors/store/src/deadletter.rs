//! Rows PostgreSQL refused for their content. They must neither block the queue behind them nor
//! vanish: each goes, with the database's error, to a JSON-lines file per day under the
//! dead-letter directory (0700; files 0600), where an operator can read, fix and replay them
//! (the `item` of each line is a store item in the spool's format: drop such lines into a spool
//! file to write them again).

use crate::spool::{create_private_dir, sync_dir};
use crate::writer::StoreItem;
use serde::Serialize;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// One refused row as written to the file.
#[derive(Serialize)]
struct Line<'a> {
    rejected_at: String,
    error: &'a str,
    item: &'a StoreItem,
}

/// The dead-letter directory.
#[derive(Debug)]
pub struct DeadLetters {
    dir: PathBuf,
}

impl DeadLetters {
    /// Uses (creating, 0700) `dir`.
    pub fn open(dir: &Path) -> io::Result<Self> {
        create_private_dir(dir)?;
        Ok(DeadLetters {
            dir: dir.to_owned(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends refused items with the error that refused them; returns the file written.
    pub fn write(&self, rejected: &[(StoreItem, String)]) -> io::Result<PathBuf> {
        let now = chrono::Utc::now();
        let path = self
            .dir
            .join(format!("rejected-{}.jsonl", now.format("%Y-%m-%d")));
        let existed = path.exists();
        let mut f = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)?;
        let mut buf = Vec::new();
        for (item, error) in rejected {
            serde_json::to_writer(
                &mut buf,
                &Line {
                    rejected_at: now.to_rfc3339(),
                    error,
                    item,
                },
            )?;
            buf.push(b'\n');
        }
        f.write_all(&buf)?;
        f.sync_all()?;
        if !existed {
            sync_dir(&self.dir)?;
        }
        Ok(path)
    }
}
