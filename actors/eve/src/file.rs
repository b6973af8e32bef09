//! The EVE file itself: appending lines, reopening, rotating by size. No actix here.

use netmonitor_common::eve::Eve;
use netmonitor_common::Event;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Bytes buffered before a write reaches the file.
const BUFFER: usize = 1 << 20;

/// An open EVE file.
pub struct EveFile {
    path: PathBuf,
    out: BufWriter<File>,
    /// Size of the file including what is buffered.
    size: u64,
    line: Vec<u8>,
}

impl EveFile {
    /// Opens `path` for appending (creating it, 0640).
    pub fn open(path: &Path) -> io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let f = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .open(path)?;
        let size = f.metadata()?.len();
        Ok(EveFile {
            path: path.to_owned(),
            out: BufWriter::with_capacity(BUFFER, f),
            size,
            line: Vec::with_capacity(4096),
        })
    }

    /// Appends one event as one line.
    pub fn write(&mut self, event: &Event) -> io::Result<()> {
        if event.kind.is_internal() {
            return Ok(());
        }
        self.line.clear();
        serde_json::to_writer(&mut self.line, &Eve(event))?;
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        self.size += self.line.len() as u64;
        Ok(())
    }

    /// Size including buffered lines.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Pushes buffered lines to the file.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes and opens the path again (after logrotate moved the file away).
    pub fn reopen(&mut self) -> io::Result<()> {
        self.out.flush()?;
        *self = EveFile::open(&self.path)?;
        Ok(())
    }

    /// Flushes, moves `path` to `path.1` (shifting older ones up to `keep`), opens a new file.
    pub fn rotate(&mut self, keep: usize) -> io::Result<()> {
        self.out.flush()?;
        let numbered = |n: usize| {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        };
        let _ = std::fs::remove_file(numbered(keep));
        for n in (1..keep).rev() {
            let from = numbered(n);
            if from.exists() {
                std::fs::rename(&from, numbered(n + 1))?;
            }
        }
        std::fs::rename(&self.path, numbered(1))?;
        *self = EveFile::open(&self.path)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netmonitor_common::{EventHeader, EventKind, FlowKey, FlowRecord, Timestamp};

    fn ev() -> Event {
        Event {
            header: EventHeader {
                ts: Timestamp(1),
                flow_id: 1,
                key: FlowKey {
                    src_ip: "10.0.0.1".parse().unwrap(),
                    src_port: 1,
                    dst_ip: "10.0.0.2".parse().unwrap(),
                    dst_port: 2,
                    proto: 6,
                },
            },
            kind: EventKind::Flow(FlowRecord::default()),
        }
    }

    #[test]
    fn rotation_shifts_files_and_keeps_a_bounded_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("eve.json");
        let mut f = EveFile::open(&path).unwrap();
        for round in 0..4 {
            for _ in 0..=round {
                f.write(&ev()).unwrap();
            }
            f.rotate(2).unwrap();
        }
        f.write(&ev()).unwrap();
        f.flush().unwrap();
        let lines = |p: &Path| std::fs::read_to_string(p).unwrap().lines().count();
        assert_eq!(lines(&path), 1);
        assert_eq!(lines(&dir.path().join("eve.json.1")), 4);
        assert_eq!(lines(&dir.path().join("eve.json.2")), 3);
        assert!(!dir.path().join("eve.json.3").exists());
    }
}
