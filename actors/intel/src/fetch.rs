//! Downloads a feed: HTTP(S) with a timeout, a size cap and conditional requests (ETag,
//! If-Modified-Since), or a local file (its modification time is the validator). Blocking:
//! the feed actor runs it on a worker thread.

use base64::Engine as _;
use std::io::Read;
use std::time::Duration;

/// Credentials of a feed (from the environment, never stored).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Auth {
    /// HTTP basic user and password.
    pub basic: Option<(String, String)>,
    /// Bearer token.
    pub token: Option<String>,
}

impl Auth {
    /// The `Authorization` header value, if any.
    pub fn header(&self) -> Option<String> {
        if let Some(t) = &self.token {
            return Some(format!("Bearer {t}"));
        }
        self.basic.as_ref().map(|(u, p)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        })
    }
}

/// Bounds on one download.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connect and read timeout of the whole request.
    pub timeout: Duration,
    /// Largest body accepted.
    pub max_bytes: u64,
}

/// What the last good download said about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Validators {
    /// `ETag`.
    pub etag: Option<String>,
    /// `Last-Modified` (or a file's modification time).
    pub last_modified: Option<String>,
}

/// The outcome of a download.
#[derive(Debug)]
pub enum Fetched {
    /// The source has not changed since the validators.
    NotModified,
    /// New content.
    Body {
        /// The text (invalid UTF-8 replaced).
        text: String,
        /// Validators for the next request.
        validators: Validators,
    },
}

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Transport failure (DNS, connect, TLS, timeout).
    #[error("download failed: {0}")]
    Transport(String),
    /// A non-success status.
    #[error("server answered HTTP {0}")]
    Status(u16),
    /// The body exceeds the cap.
    #[error("larger than the {0}-byte cap")]
    TooLarge(u64),
    /// A local file could not be read.
    #[error("cannot read {path}: {error}")]
    File {
        /// Path.
        path: String,
        /// Error.
        error: std::io::Error,
    },
}

/// An HTTP agent with the timeout (redirects followed, at most five).
pub fn agent(limits: &Limits) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(limits.timeout)
        .redirects(5)
        .user_agent(concat!("netmonitor/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Whether `source` names a local file (`file://` URL or a path) rather than an HTTP(S) URL.
pub fn local_path(source: &str) -> Option<&str> {
    if let Some(p) = source.strip_prefix("file://") {
        return Some(p);
    }
    (!source.starts_with("http://") && !source.starts_with("https://")).then_some(source)
}

/// Downloads `source` unless it is unchanged since `validators`.
pub fn fetch(
    source: &str,
    auth: &Auth,
    validators: &Validators,
    limits: &Limits,
) -> Result<Fetched, FetchError> {
    if let Some(path) = local_path(source) {
        return fetch_file(path, validators, limits);
    }
    let mut req = agent(limits).get(source);
    if let Some(h) = auth.header() {
        req = req.set("Authorization", &h);
    }
    if let Some(e) = &validators.etag {
        req = req.set("If-None-Match", e);
    }
    if let Some(m) = &validators.last_modified {
        req = req.set("If-Modified-Since", m);
    }
    let resp = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(code, _)) => return Err(FetchError::Status(code)),
        Err(e) => return Err(FetchError::Transport(e.to_string())),
    };
    if resp.status() == 304 {
        return Ok(Fetched::NotModified);
    }
    if !(200..300).contains(&resp.status()) {
        return Err(FetchError::Status(resp.status()));
    }
    let new = Validators {
        etag: resp.header("ETag").map(str::to_owned),
        last_modified: resp.header("Last-Modified").map(str::to_owned),
    };
    let text = read_capped(resp.into_reader(), limits.max_bytes)?;
    Ok(Fetched::Body {
        text,
        validators: new,
    })
}

/// Reads at most `max` bytes; more is an error, not a silent cut.
pub fn read_capped(reader: impl Read, max: u64) -> Result<String, FetchError> {
    let mut buf = Vec::new();
    reader
        .take(max.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| FetchError::Transport(e.to_string()))?;
    if buf.len() as u64 > max {
        return Err(FetchError::TooLarge(max));
    }
    Ok(match String::from_utf8(buf) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

fn fetch_file(path: &str, validators: &Validators, limits: &Limits) -> Result<Fetched, FetchError> {
    let err = |error| FetchError::File {
        path: path.to_owned(),
        error,
    };
    let meta = std::fs::metadata(path).map_err(err)?;
    let stamp = meta.modified().ok().map(|t| {
        format!(
            "{}:{}",
            chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339(),
            meta.len()
        )
    });
    if stamp.is_some() && stamp == validators.last_modified {
        return Ok(Fetched::NotModified);
    }
    if meta.len() > limits.max_bytes {
        return Err(FetchError::TooLarge(limits.max_bytes));
    }
    let file = std::fs::File::open(path).map_err(err)?;
    let text = read_capped(file, limits.max_bytes)?;
    Ok(Fetched::Body {
        text,
        validators: Validators {
            etag: None,
            last_modified: stamp,
        },
    })
}
