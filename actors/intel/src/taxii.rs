//! TAXII 2.1 polling: `GET {collection}/objects/` with the TAXII media type, `added_after` from
//! the last poll's `X-TAXII-Date-Added-Last`, pages followed through `next` while `more`.

use crate::fetch::{agent, read_capped, Auth, FetchError, Limits};
use serde_json::Value;

/// The TAXII 2.1 media type.
pub const MEDIA_TYPE: &str = "application/taxii+json;version=2.1";

/// Objects per page asked for.
pub const PAGE_LIMIT: usize = 1000;

/// Pages followed at most in one poll (a server that never stops saying `more`).
pub const MAX_PAGES: usize = 10_000;

/// What one poll brought.
#[derive(Debug, Default)]
pub struct Poll {
    /// STIX objects, in the order the server sent them.
    pub objects: Vec<Value>,
    /// Pages read.
    pub pages: usize,
    /// Where the next poll starts (`added_after`); unchanged when nothing was added.
    pub cursor: Option<String>,
}

/// Polls the collection at `collection_url` (ending in `/collections/{id}/`) for objects added
/// after `cursor`; `progress(pages, objects)` after each page.
pub fn poll(
    collection_url: &str,
    auth: &Auth,
    cursor: Option<&str>,
    limits: &Limits,
    mut progress: impl FnMut(usize, usize),
) -> Result<Poll, FetchError> {
    let base = format!("{}/objects/", collection_url.trim_end_matches('/'));
    let agent = agent(limits);
    let mut out = Poll {
        cursor: cursor.map(str::to_owned),
        ..Poll::default()
    };
    let mut next: Option<String> = None;
    loop {
        let mut req = agent
            .get(&base)
            .set("Accept", MEDIA_TYPE)
            .query("limit", &PAGE_LIMIT.to_string());
        if let Some(c) = cursor {
            req = req.query("added_after", c);
        }
        if let Some(n) = &next {
            req = req.query("next", n);
        }
        if let Some(h) = auth.header() {
            req = req.set("Authorization", &h);
        }
        let resp = match req.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(code, _)) => return Err(FetchError::Status(code)),
            Err(e) => return Err(FetchError::Transport(e.to_string())),
        };
        if let Some(last) = resp.header("X-TAXII-Date-Added-Last") {
            if out.cursor.as_deref().is_none_or(|c| last > c) {
                out.cursor = Some(last.to_owned());
            }
        }
        let text = read_capped(resp.into_reader(), limits.max_bytes)?;
        let envelope: Value = serde_json::from_str(&text)
            .map_err(|e| FetchError::Transport(format!("TAXII envelope is not JSON: {e}")))?;
        if let Some(objs) = envelope["objects"].as_array() {
            out.objects.extend(objs.iter().cloned());
        }
        out.pages += 1;
        progress(out.pages, out.objects.len());
        next = envelope["next"].as_str().map(str::to_owned);
        if envelope["more"] != true || next.is_none() || out.pages >= MAX_PAGES {
            break;
        }
    }
    Ok(out)
}
