//! PCAP forensics: exporting packets of a flow (or an address pair, or an alert's flow) from
//! the sensor's ring buffer to a file in the captures directory, recording it in
//! `pcap_captures`, listing and summarising captures, and deleting them — only ever inside
//! the captures directory (paths are resolved and checked, `..` and escaping symlinks are
//! refused).

use crate::args::{invalid, Args};
use crate::schema::*;
use crate::sensor::ts_json;
use crate::support::*;
use crate::ToolContext;
use chrono::{DateTime, Utc};
use netmonitor_capture::ExportFilter;
use netmonitor_common::Timestamp;
use netmonitor_mcp::{Scope, ToolAnnotations, ToolDef, ToolError};
use netmonitor_store::queries::{self as q, PcapCaptureRecord};
use serde_json::{json, Value};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Packets one export writes at most by default.
const DEFAULT_MAX_PACKETS: i64 = 100_000;
/// Hard cap on packets per export.
const MAX_PACKETS: i64 = 1_000_000;
/// Files scanned at most when sizing the captures directory.
const MAX_DIR_SCAN: usize = 100_000;
/// Longest path accepted by `delete_pcap_capture`.
const MAX_PATH_LEN: u64 = 4096;

/// Distinguishes exports started within the same microsecond.
static EXPORT_SEQ: AtomicU64 = AtomicU64::new(0);

/// The tools of this module.
pub(crate) fn tools(ctx: &Ctx) -> Vec<ToolDef> {
    vec![
        get_pcap_captures(ctx),
        get_pcap_stats(ctx),
        export_flow_pcap(ctx),
        delete_pcap_capture(ctx),
    ]
}

/// Resolves `path` (absolute, or relative to `dir`) and checks that it names an entry inside
/// `dir`: no `..` component, and after resolving symlinks it stays below `dir`. The file need
/// not exist (its parent must).
pub(crate) fn resolve_inside(dir: &Path, path: &str) -> Result<PathBuf, ToolError> {
    if path.is_empty() || path.contains('\0') {
        return Err(invalid("path", "must be a file name or path"));
    }
    let p = Path::new(path);
    if p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(invalid("path", "'..' is not allowed"));
    }
    let base = dir.canonicalize().map_err(|e| {
        ToolError::Unavailable(format!("captures directory {}: {e}", dir.display()))
    })?;
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    let resolved = match joined.canonicalize() {
        Ok(c) => c,
        Err(_) => {
            let parent = joined
                .parent()
                .and_then(|d| d.canonicalize().ok())
                .ok_or_else(|| invalid("path", "no such directory"))?;
            let name = joined
                .file_name()
                .ok_or_else(|| invalid("path", "must name a file"))?;
            parent.join(name)
        }
    };
    if resolved == base || !resolved.starts_with(&base) {
        return Err(invalid(
            "path",
            format!(
                "only files inside the captures directory {} can be deleted",
                base.display()
            ),
        ));
    }
    Ok(resolved)
}

fn capture_json(r: &PcapCaptureRecord) -> Result<Value, ToolError> {
    let mut v = json(r)?;
    let on_disk = std::fs::metadata(&r.path).ok().filter(|m| m.is_file());
    if let Some(m) = v.as_object_mut() {
        m.insert("exists".into(), json!(on_disk.is_some()));
        m.insert("size_on_disk".into(), json!(on_disk.map(|m| m.len())));
    }
    Ok(v)
}

fn capture_schema() -> Value {
    output(vec![
        ("id", count("Capture id (for delete_pcap_capture)")),
        ("path", string("File path")),
        ("flow_id", opt_int("Flow exported, if one was asked for")),
        ("alert_id", opt_int("Alert whose flow was exported, if any")),
        ("packets", count("Packets written")),
        ("bytes", count("File size when written")),
        ("created_at", string("When (RFC 3339)")),
        ("exists", boolean("File still on disk", None)),
        ("size_on_disk", opt_int("Current size, null when gone")),
    ])
}

fn get_pcap_captures(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "get_pcap_captures",
            title: "PCAP captures",
            description: "Lists PCAP files exported with export_flow_pcap, newest first: id, path, the flow or alert they were made for, packets, size, creation time, and whether the file is still on disk.",
            input: input(vec![("limit", limit(1000, 100))], &[]),
            output: output(vec![
                ("returned", count("Captures in this answer")),
                ("captures", array("Captures", capture_schema())),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let limit = args.i64_or("limit", 100, 1, 1000)?;
            let mut conn = db(&ctx).await?;
            let rows = q::list_pcap_captures(&mut conn, limit).await.map_err(db_err)?;
            let list = rows.iter().map(capture_json).collect::<Result<Vec<_>, _>>()?;
            Ok(json!({"returned": list.len(), "captures": list}))
        },
    )
}

fn dir_usage(dir: &Path) -> (u64, u64) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    let (mut files, mut bytes) = (0u64, 0u64);
    for e in rd.flatten().take(MAX_DIR_SCAN) {
        if let Ok(m) = e.metadata() {
            if m.is_file() {
                files += 1;
                bytes = bytes.saturating_add(m.len());
            }
        }
    }
    (files, bytes)
}

fn get_pcap_stats(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "get_pcap_stats",
            title: "PCAP statistics",
            description: "Totals of exported captures (count, packets, bytes, oldest and newest) from the database, the files and bytes actually in the captures directory, and what the packet ring buffer currently holds for new exports.",
            input: input(vec![], &[]),
            output: output(vec![
                ("captures", output(vec![
                    ("count", count("Recorded captures")),
                    ("packets", count("Packets in them")),
                    ("bytes", count("Bytes when written")),
                    ("oldest", opt_string("Oldest capture (RFC 3339)")),
                    ("newest", opt_string("Newest capture (RFC 3339)")),
                ])),
                ("directory", output(vec![
                    ("path", string("Captures directory")),
                    ("files", count("Files in it")),
                    ("bytes", count("Their total size")),
                ])),
                ("ring_buffer", opt_object("Packets, bytes, capacity and time range held; null when the sensor is stopped")),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, _args| async move {
            let mut conn = db(&ctx).await?;
            let t = q::pcap_totals(&mut conn).await.map_err(db_err)?;
            let (files, bytes) = dir_usage(&ctx.captures_dir);
            let ring = sensor_status(&ctx).await.map(|s| {
                let r = s.pipeline.ring;
                json!({
                    "packets": r.packets, "bytes": r.bytes, "capacity_bytes": r.capacity_bytes,
                    "oldest": ts_json(r.oldest), "newest": ts_json(r.newest),
                })
            });
            Ok(json!({
                "captures": {
                    "count": t.captures, "packets": t.packets, "bytes": t.bytes,
                    "oldest": t.oldest.map(|d| d.to_rfc3339()),
                    "newest": t.newest.map(|d| d.to_rfc3339()),
                },
                "directory": {
                    "path": ctx.captures_dir.display().to_string(),
                    "files": files, "bytes": bytes,
                },
                "ring_buffer": ring,
            }))
        },
    )
}

fn proto_number(name: &str) -> Option<u8> {
    match name {
        "tcp" => Some(netmonitor_common::ipproto::TCP),
        "udp" => Some(netmonitor_common::ipproto::UDP),
        "icmp" => Some(netmonitor_common::ipproto::ICMP),
        "icmpv6" => Some(netmonitor_common::ipproto::ICMPV6),
        "sctp" => Some(netmonitor_common::ipproto::SCTP),
        "gre" => Some(netmonitor_common::ipproto::GRE),
        _ => None,
    }
}

fn to_ts(t: DateTime<Utc>) -> Timestamp {
    Timestamp(t.timestamp_micros())
}

fn port_arg(args: &Args, k: &str) -> Result<Option<u16>, ToolError> {
    Ok(args
        .opt_i64(k, 0, i64::from(u16::MAX))?
        .and_then(|p| u16::try_from(p).ok()))
}

/// Builds the export filter from the arguments (and the alert, when `alert_id` is given).
fn export_filter(args: &Args, alert: Option<&q::AlertRecord>) -> Result<ExportFilter, ToolError> {
    let mut f = ExportFilter {
        flow_id: args.opt_u64("flow_id")?,
        ip_a: args.opt_ip("src_ip")?,
        port_a: port_arg(args, "src_port")?,
        ip_b: args.opt_ip("dst_ip")?,
        port_b: port_arg(args, "dst_port")?,
        proto: match args.opt_str("proto")? {
            None => None,
            Some(p) => Some(proto_number(&p).ok_or_else(|| invalid("proto", "unknown protocol"))?),
        },
        start: args.opt_time("since")?.map(to_ts),
        end: args.opt_time("until")?.map(to_ts),
        max_packets: args
            .opt_i64("max_packets", 1, MAX_PACKETS)?
            .or(Some(DEFAULT_MAX_PACKETS))
            .and_then(|n| usize::try_from(n).ok()),
    };
    if let Some(a) = alert {
        f.flow_id = f.flow_id.or(u64::try_from(a.flow_id).ok());
    }
    if f.flow_id.is_none() && f.ip_a.is_none() && f.ip_b.is_none() {
        return Err(invalid(
            "flow_id",
            "give a flow_id, an alert_id, or at least one of src_ip/dst_ip",
        ));
    }
    if let (Some(s), Some(e)) = (f.start, f.end) {
        if s > e {
            return Err(invalid("since", "must not be after 'until'"));
        }
    }
    Ok(f)
}

fn export_file_name() -> String {
    let now = Utc::now();
    let seq = EXPORT_SEQ.fetch_add(1, Ordering::Relaxed);
    format!(
        "netmonitor-{}-{:06}-{}-{seq}.pcap",
        now.format("%Y%m%dT%H%M%S"),
        now.timestamp_subsec_micros(),
        std::process::id()
    )
}

fn export_flow_pcap(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "export_flow_pcap",
            title: "Export flow as PCAP",
            description: "Writes the packets the sensor's ring buffer still holds for a flow to a new pcap file in the captures directory and records it (see get_pcap_captures). Select by flow_id (from alerts, flows or TLS sessions), by alert_id (its flow), or by endpoints: src_ip/src_port and dst_ip/dst_port match either direction, optionally a protocol and a since/until capture-time window. Fails without writing anything when no held packet matches (get_packet_buffer_summary shows what is held).",
            input: input(
                vec![
                    ("flow_id", int("Flow id", 0, i64::MAX, None)),
                    ("alert_id", int("Export the flow of this alert", 1, i64::MAX, None)),
                    ("src_ip", ip("One endpoint's address")),
                    ("src_port", int("That endpoint's port", 0, 65535, None)),
                    ("dst_ip", ip("The other endpoint's address")),
                    ("dst_port", int("The other endpoint's port", 0, 65535, None)),
                    ("proto", enumeration("IP protocol", &["tcp", "udp", "icmp", "icmpv6", "sctp", "gre"])),
                    ("since", string_len("Only packets captured at or after this time (RFC 3339)", 10, 40)),
                    ("until", string_len("Only packets captured at or before this time (RFC 3339)", 10, 40)),
                    ("max_packets", int("Most packets to write", 1, MAX_PACKETS, Some(DEFAULT_MAX_PACKETS))),
                ],
                &[],
            ),
            output: output(vec![
                ("capture_id", count("Row in pcap_captures")),
                ("path", string("File written")),
                ("packets", count("Packets written")),
                ("bytes", count("File size")),
                ("filter", any_object("The filter applied")),
            ]),
            annotations: WRITE_ADDITIVE,
            scope: Scope::ReadWrite,
        },
        |ctx, _t, args| async move {
            let alert_id = args.opt_i64("alert_id", 1, i64::MAX)?;
            let mut conn = db(&ctx).await?;
            let alert = match alert_id {
                Some(id) => Some(
                    q::get_alert(&mut conn, id)
                        .await
                        .map_err(db_err)?
                        .ok_or_else(|| ToolError::NotFound(format!("no alert with id {id}")))?,
                ),
                None => None,
            };
            let filter = export_filter(&args, alert.as_ref())?;
            drop(conn);
            export_ring(&ctx, filter, alert_id).await
        },
    )
}

/// Copies the ring's packets matching `filter` into a new file of the captures directory
/// (0700; the copy is taken between packet batches, the file written off the packet path) and
/// records it in `pcap_captures`. Shared by export_flow_pcap and the `export_ring` command.
pub(crate) async fn export_ring(
    ctx: &ToolContext,
    filter: ExportFilter,
    alert_id: Option<i64>,
) -> Result<Value, ToolError> {
    std::fs::create_dir_all(&ctx.captures_dir)
        .and_then(|()| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&ctx.captures_dir, std::fs::Permissions::from_mode(0o700))
        })
        .map_err(|e| {
            ToolError::Unavailable(format!(
                "captures directory {}: {e}",
                ctx.captures_dir.display()
            ))
        })?;
    let dir = ctx.captures_dir.canonicalize().map_err(|e| {
        ToolError::Unavailable(format!(
            "captures directory {}: {e}",
            ctx.captures_dir.display()
        ))
    })?;
    let path = dir.join(export_file_name());
    let res = capture(ctx)?
        .export_pcap(filter.clone(), path.clone())
        .await
        .map_err(|e| ToolError::Unavailable(format!("export failed: {e}")))?;
    if res.packets == 0 {
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove empty export");
        }
        return Err(ToolError::NotFound(
            "no packet in the ring buffer matches this filter (it may have been overwritten; see get_packet_buffer_summary)".into(),
        ));
    }
    let path_s = path.display().to_string();
    let mut conn = db(ctx).await?;
    let row = q::insert_pcap_capture(
        &mut conn,
        &path_s,
        filter.flow_id.and_then(|f| i64::try_from(f).ok()),
        alert_id,
        i64::try_from(res.packets).unwrap_or(i64::MAX),
        i64::try_from(res.bytes).unwrap_or(i64::MAX),
    )
    .await
    .map_err(db_err)?;
    Ok(json!({
        "capture_id": row.id,
        "path": path_s,
        "packets": res.packets,
        "bytes": res.bytes,
        "filter": json(&filter)?,
    }))
}

fn delete_pcap_capture(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "delete_pcap_capture",
            title: "Delete PCAP capture",
            description: "Deletes an exported capture file, by capture_id (from get_pcap_captures) or by path, and forgets its record. Only files inside the captures directory can be deleted: '..' and paths (or symlinks) leading outside are refused.",
            input: input(
                vec![
                    ("capture_id", int("Capture id", 1, i64::MAX, None)),
                    ("path", string_len("File path (absolute, or relative to the captures directory)", 1, MAX_PATH_LEN)),
                ],
                &[],
            ),
            output: output(vec![
                ("path", string("File concerned")),
                ("file_deleted", boolean("The file was removed", None)),
                ("record_deleted", boolean("Its pcap_captures row was removed", None)),
            ]),
            annotations: DESTRUCTIVE,
            scope: Scope::Admin,
        },
        |ctx, _t, args| async move {
            let mut conn = db(&ctx).await?;
            let (path, record) = match (args.opt_i64("capture_id", 1, i64::MAX)?, args.opt_str("path")?) {
                (Some(id), _) => {
                    let r = q::get_pcap_capture(&mut conn, id)
                        .await
                        .map_err(db_err)?
                        .ok_or_else(|| ToolError::NotFound(format!("no capture with id {id}")))?;
                    (resolve_inside(&ctx.captures_dir, &r.path)?, Some(r))
                }
                (None, Some(p)) => {
                    let resolved = resolve_inside(&ctx.captures_dir, &p)?;
                    let s = resolved.display().to_string();
                    let r = q::find_pcap_capture_by_path(&mut conn, &s)
                        .await
                        .map_err(db_err)?;
                    (resolved, r)
                }
                (None, None) => return Err(invalid("capture_id", "give a capture_id or a path")),
            };
            let file_deleted = match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_file() => {
                    std::fs::remove_file(&path).map_err(|e| {
                        ToolError::Failed(format!("cannot delete {}: {e}", path.display()))
                    })?;
                    true
                }
                Ok(_) => return Err(invalid("path", "is not a regular file")),
                Err(_) => false,
            };
            let record_deleted = match &record {
                Some(r) => q::delete_pcap_capture(&mut conn, r.id).await.map_err(db_err)?,
                None => false,
            };
            if !file_deleted && !record_deleted {
                return Err(ToolError::NotFound(format!(
                    "{} does not exist and is not recorded",
                    path.display()
                )));
            }
            Ok(json!({
                "path": path.display().to_string(),
                "file_deleted": file_deleted,
                "record_deleted": record_deleted,
            }))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletion_paths_stay_inside_the_captures_directory() {
        let Ok(root) = tempfile::tempdir() else {
            return;
        };
        let dir = root.path().join("captures");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.pcap"), b"x").unwrap();
        std::fs::write(root.path().join("secret"), b"x").unwrap();
        let base = dir.canonicalize().unwrap();
        assert_eq!(resolve_inside(&dir, "a.pcap").unwrap(), base.join("a.pcap"));
        let abs = base.join("a.pcap").display().to_string();
        assert_eq!(resolve_inside(&dir, &abs).unwrap(), base.join("a.pcap"));
        assert_eq!(
            resolve_inside(&dir, "gone.pcap").unwrap(),
            base.join("gone.pcap")
        );
        assert!(resolve_inside(&dir, "../secret").is_err());
        assert!(resolve_inside(&dir, "sub/../../secret").is_err());
        let outside = root.path().join("secret").display().to_string();
        assert!(resolve_inside(&dir, &outside).is_err());
        assert!(resolve_inside(&dir, "/etc/passwd").is_err());
        assert!(resolve_inside(&dir, "").is_err());
        assert!(resolve_inside(&dir, ".").is_err());
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(root.path().join("secret"), dir.join("link")).unwrap();
            assert!(resolve_inside(&dir, "link").is_err());
        }
    }

    #[test]
    fn export_filter_needs_a_selector() {
        let a = |v: Value| Args::new(v.as_object().cloned().unwrap_or_default());
        assert!(export_filter(&a(json!({})), None).is_err());
        let f = export_filter(
            &a(json!({"src_ip": "192.168.56.1", "dst_port": 443, "proto": "tcp"})),
            None,
        )
        .unwrap();
        assert_eq!(f.port_b, Some(443));
        assert_eq!(f.proto, Some(6));
        assert_eq!(f.max_packets, Some(100_000));
        let f = export_filter(&a(json!({"flow_id": 18446744073709551615u64})), None).unwrap();
        assert_eq!(f.flow_id, Some(u64::MAX));
        assert!(export_filter(
            &a(json!({"flow_id": 1, "since": "2020-01-02", "until": "2020-01-01"})),
            None
        )
        .is_err());
    }
}
