//! The embedded default database: a private PostgreSQL cluster under the data directory, created
//! with the machine's own `initdb`/`pg_ctl`, reachable only through a unix socket.
//!
//! PostgreSQL refuses to run as root, so when we are root the server runs as the unprivileged
//! system user [`PG_SYSTEM_USER`] (created on first use); the cluster is reused across runs and
//! stopped only by the process that started it.

use crate::StoreError;
use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The unprivileged account that owns and runs the private cluster when we run as root.
pub const PG_SYSTEM_USER: &str = "netmonitor";
/// Socket "port" of the private cluster (TCP is off; the number only names the socket file).
pub const PRIVATE_PORT: u16 = 5432;
/// Longest socket directory path that still fits `sun_path` with `/.s.PGSQL.NNNN` appended.
const MAX_SOCKET_DIR_LEN: usize = 90;
/// Database created inside the private cluster.
pub const PRIVATE_DB_NAME: &str = "netmonitor";

/// A private PostgreSQL cluster living in `<data_dir>/pg`.
#[derive(Debug)]
pub struct PrivateCluster {
    pgdata: PathBuf,
    socket_dir: PathBuf,
    bin_dir: PathBuf,
    run_as: Option<(u32, u32)>,
    fsync: bool,
    started_by_us: bool,
}

impl PrivateCluster {
    /// Locates the PostgreSQL binaries and decides which user runs the server; starts nothing.
    pub fn new(data_dir: &Path, fsync: bool) -> Result<Self, StoreError> {
        let bin_dir = find_pg_bin_dir().ok_or_else(|| {
            StoreError::Cluster(
                "PostgreSQL server binaries (initdb, pg_ctl) not found: install them \
                 (Debian/Ubuntu: apt-get install postgresql) or set NETMONITOR_PG_BIN, \
                 or point DATABASE_URL at an existing server"
                    .into(),
            )
        })?;
        std::fs::create_dir_all(data_dir)
            .map_err(|e| io_err("create data directory", data_dir, e))?;
        let data_dir = data_dir
            .canonicalize()
            .map_err(|e| io_err("resolve data directory", data_dir, e))?;
        let run_as = if unsafe { libc::geteuid() } == 0 {
            Some(ensure_system_user()?)
        } else {
            None
        };
        let pgdata = data_dir.join("pg");
        let mut socket_dir = data_dir.join("run");
        if socket_dir.as_os_str().len() > MAX_SOCKET_DIR_LEN {
            socket_dir =
                std::env::temp_dir().join(format!("netmonitor-pg-{:x}", path_hash(&data_dir)));
        }
        match run_as {
            Some((uid, _)) => check_reachable(&data_dir, uid)?,
            // only this user needs the data directory
            None => std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| io_err("chmod", &data_dir, e))?,
        }
        Ok(PrivateCluster {
            pgdata,
            socket_dir,
            bin_dir,
            run_as,
            fsync,
            started_by_us: false,
        })
    }

    /// Initialises the cluster on first use, starts it unless it already runs, and creates the
    /// database. Returns the libpq connection string for it.
    pub fn ensure_running(&mut self) -> Result<String, StoreError> {
        if !self.pgdata.join("PG_VERSION").exists() {
            self.initdb()?;
        }
        if !self.is_running() {
            self.start()?;
        }
        self.ensure_database()?;
        Ok(self.conninfo(PRIVATE_DB_NAME))
    }

    /// libpq key/value connection string for a database of this cluster.
    pub fn conninfo(&self, dbname: &str) -> String {
        format!(
            "host={} port={} user=postgres dbname={}",
            self.socket_dir.display(),
            PRIVATE_PORT,
            dbname
        )
    }

    /// True when a postmaster for this data directory is alive.
    pub fn is_running(&self) -> bool {
        let Ok(text) = std::fs::read_to_string(self.pgdata.join("postmaster.pid")) else {
            return false;
        };
        let Some(pid) = text
            .lines()
            .next()
            .and_then(|l| l.trim().parse::<i32>().ok())
        else {
            return false;
        };
        // Signal 0 only checks that the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        alive
            && self
                .socket_dir
                .join(format!(".s.PGSQL.{PRIVATE_PORT}"))
                .exists()
    }

    /// Whether this process started the server (and so must stop it).
    pub fn started_by_us(&self) -> bool {
        self.started_by_us
    }

    /// Stops the server if this process started it.
    pub fn stop(&mut self) -> Result<(), StoreError> {
        if !self.started_by_us {
            return Ok(());
        }
        self.started_by_us = false;
        self.pg_ctl(&["stop", "-m", "fast", "-w", "-t", "60"])
    }

    /// Stops the server whoever started it (tests use this to simulate an outage).
    pub fn force_stop(&mut self) -> Result<(), StoreError> {
        self.started_by_us = false;
        self.pg_ctl(&["stop", "-m", "immediate", "-w", "-t", "60"])
    }

    /// Starts the server again after [`force_stop`](Self::force_stop).
    pub fn restart(&mut self) -> Result<(), StoreError> {
        self.start()
    }

    fn initdb(&self) -> Result<(), StoreError> {
        self.make_owned_dir(&self.pgdata, 0o700)?;
        let mut cmd = self.command("initdb");
        cmd.arg("-D").arg(&self.pgdata).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
        ]);
        run(cmd, "initdb")
    }

    /// fsync may be off for throwaway clusters, but synchronous_commit stays on: with it off an
    /// immediate stop loses commits the writer already counted as durable.
    fn start(&mut self) -> Result<(), StoreError> {
        self.make_owned_dir(&self.socket_dir, 0o700)?;
        let opts = format!(
            "-p {PRIVATE_PORT} -k '{}' -c listen_addresses='' -c fsync={} -c full_page_writes={}",
            self.socket_dir.display(),
            if self.fsync { "on" } else { "off" },
            if self.fsync { "on" } else { "off" },
        );
        let log = self.pgdata.join("server.log");
        let log = log.to_string_lossy().into_owned();
        self.pg_ctl(&["start", "-w", "-t", "60", "-l", &log, "-o", &opts])
            .or_else(|e| if self.is_running() { Ok(()) } else { Err(e) })?;
        self.started_by_us = true;
        tracing::info!(pgdata = %self.pgdata.display(), "private PostgreSQL cluster started");
        Ok(())
    }

    fn ensure_database(&self) -> Result<(), StoreError> {
        use diesel::connection::SimpleConnection;
        use diesel::prelude::*;
        #[derive(QueryableByName)]
        struct Exists {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            exists: bool,
        }
        let mut conn = PgConnection::establish(&self.conninfo("postgres"))?;
        let found: Exists = diesel::sql_query(format!(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = '{PRIVATE_DB_NAME}') AS exists"
        ))
        .get_result(&mut conn)?;
        if !found.exists {
            // A concurrent creator may win the race; that is fine.
            if let Err(e) = conn.batch_execute(&format!("CREATE DATABASE {PRIVATE_DB_NAME}")) {
                if !e.to_string().contains("already exists") {
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), StoreError> {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("-D").arg(&self.pgdata).args(args);
        run(cmd, "pg_ctl")
    }

    fn command(&self, tool: &str) -> Command {
        let mut cmd = Command::new(self.bin_dir.join(tool));
        cmd.env_remove("PGDATA")
            .env("LC_ALL", "C")
            .current_dir(self.pgdata.parent().unwrap_or(Path::new("/")))
            .stdin(Stdio::null());
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
            // std drops root's supplementary groups itself before setuid.
        }
        cmd
    }

    fn make_owned_dir(&self, dir: &Path, mode: u32) -> Result<(), StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| io_err("create directory", dir, e))?;
        if let Some((uid, gid)) = self.run_as {
            let c = CString::new(dir.as_os_str().as_encoded_bytes())
                .map_err(|_| StoreError::Cluster(format!("bad path {}", dir.display())))?;
            if unsafe { libc::chown(c.as_ptr(), uid, gid) } != 0 {
                return Err(io_err("chown", dir, std::io::Error::last_os_error()));
            }
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
            .map_err(|e| io_err("chmod", dir, e))
    }
}

fn run(mut cmd: Command, what: &str) -> Result<(), StoreError> {
    let out = cmd
        .output()
        .map_err(|e| StoreError::Cluster(format!("cannot run {what}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(StoreError::Cluster(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        )))
    }
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Cluster(format!("{what} {}: {e}", path.display()))
}

fn path_hash(p: &Path) -> u64 {
    p.as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// Finds the directory holding `initdb` and `pg_ctl`.
pub fn find_pg_bin_dir() -> Option<PathBuf> {
    let has_tools = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(d) = std::env::var_os("NETMONITOR_PG_BIN").map(PathBuf::from) {
        return has_tools(&d).then_some(d);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_tools(&d) {
            return Some(d);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, d)| has_tools(d))
        .collect();
    versions.sort();
    if let Some((_, d)) = versions.pop() {
        return Some(d);
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|d| has_tools(d))
}

fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let c = CString::new(name).ok()?;
    // getpwnam_r: getpwnam's static buffer is shared by every thread of the process.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    let rc = unsafe {
        libc::getpwnam_r(
            c.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        None
    } else {
        Some((pwd.pw_uid, pwd.pw_gid))
    }
}

/// Serializes the creation of the system user between the threads of this process (tests start
/// many clusters at once) and, through a lock file, between processes.
static USER_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn ensure_system_user() -> Result<(u32, u32), StoreError> {
    if let Some(ids) = lookup_user(PG_SYSTEM_USER) {
        return Ok(ids);
    }
    let _guard = USER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let lock_path = std::env::temp_dir().join(".netmonitor-useradd.lock");
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| io_err("open", &lock_path, e))?;
    use std::os::fd::AsRawFd;
    // Released when the file is closed at the end of this function.
    unsafe { libc::flock(lock_file.as_raw_fd(), libc::LOCK_EX) };
    if let Some(ids) = lookup_user(PG_SYSTEM_USER) {
        return Ok(ids);
    }
    let status = Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            PG_SYSTEM_USER,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    match lookup_user(PG_SYSTEM_USER) {
        Some(ids) => Ok(ids),
        None => Err(StoreError::Cluster(format!(
            "running as root, PostgreSQL needs an unprivileged user; creating '{PG_SYSTEM_USER}' failed ({}). \
             Create it (useradd --system {PG_SYSTEM_USER}), run as a normal user, or set DATABASE_URL",
            status.map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).unwrap_or_else(|e| e.to_string())
        ))),
    }
}

/// PostgreSQL, running as `uid`, must be able to walk down to the data directory.
fn check_reachable(data_dir: &Path, uid: u32) -> Result<(), StoreError> {
    use std::os::unix::fs::MetadataExt;
    for dir in data_dir.ancestors().skip(1) {
        let Ok(meta) = std::fs::metadata(dir) else {
            continue;
        };
        let searchable = meta.uid() == uid || meta.mode() & 0o001 != 0;
        if !searchable {
            return Err(StoreError::Cluster(format!(
                "the private PostgreSQL cluster runs as '{PG_SYSTEM_USER}', which cannot enter {} \
                 (on the way to {}); choose a --data-dir it can reach (e.g. /var/lib/netmonitor) or set DATABASE_URL",
                dir.display(),
                data_dir.display()
            )));
        }
    }
    let meta = std::fs::metadata(data_dir).map_err(|e| io_err("stat", data_dir, e))?;
    if meta.mode() & 0o001 == 0 && meta.uid() != uid {
        let mut perms = meta.permissions();
        perms.set_mode(meta.mode() | 0o711);
        std::fs::set_permissions(data_dir, perms).map_err(|e| io_err("chmod", data_dir, e))?;
    }
    Ok(())
}
