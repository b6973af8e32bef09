//! Device learning tools: where each device's baseline stands (learning, learned, stale), what
//! it learnt, and freezing a learnt baseline into a template.

use crate::device_templates::{device_arg, device_key, device_props, update, NewTemplate};
use crate::schema::*;
use crate::support::*;
use netmonitor_devices::templates::{CATEGORIES, CRITICALITIES};
use netmonitor_devices::{DeviceBook, DeviceQuery};
use netmonitor_mcp::{Scope, ToolAnnotations, ToolDef, ToolError};
use serde_json::{json, Value};

/// The tools of this module.
pub(crate) fn tools(ctx: &Ctx) -> Vec<ToolDef> {
    vec![
        get_device_learning_status(ctx),
        get_device_learned_behavior(ctx),
        save_device_learned_behavior(ctx),
    ]
}

/// One device's learning state.
fn status_json(book: &DeviceBook, d: &netmonitor_devices::Device) -> Value {
    let s = book.learning();
    let b = &d.baseline;
    let (status, progress) = match &s {
        Some(s) => (
            b.status(d.last_seen_us, book.now_us(), s),
            b.progress(book.now_us(), s),
        ),
        None => ("off", 0.0),
    };
    json!({
        "device": d.id, "ips": d.ips, "template": d.template, "status": status,
        "progress": progress,
        "learning_since": (b.started_us > 0).then(|| netmonitor_common::Timestamp(b.started_us).to_eve()),
        "learned_at": b.learned_us.map(|t| netmonitor_common::Timestamp(t).to_eve()),
        "deviations": b.deviations.len(),
    })
}

fn get_device_learning_status(ctx: &Ctx) -> ToolDef {
    let mut props = device_props();
    props.push((
        "status",
        enumeration(
            "Only devices in this state",
            &["learning", "learned", "stale"],
        ),
    ));
    props.push(("limit", limit(1000, 100)));
    tool(
        ctx,
        Spec {
            name: "get_device_learning_status",
            title: "Device learning status",
            description: "Where each device's learnt baseline stands: learning (with progress over the learning window of capture time), learned, or stale (not seen for a window since); counts per state, and one device's state when `device` or `ip` is given.",
            input: input(props, &[]),
            output: output(vec![
                ("learning_secs", count("The learning window")),
                ("counts", any_object("Devices per state")),
                ("returned", count("Devices in this answer")),
                ("devices", array("Devices, most recently seen first", any_object("device, ips, template, status, progress, learning_since, learned_at, deviations"))),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let key = device_key(&args)?;
            let only = args.opt_str("status")?;
            let limit = usize::try_from(args.i64_or("limit", 100, 1, 1000)?).unwrap_or(100);
            let v = devices(&ctx, move |book| {
                let secs = book.learning().map_or(0, |s| s.learning_us / 1_000_000);
                let all = book.search(&DeviceQuery { limit: usize::MAX, ..Default::default() });
                let mut counts = serde_json::Map::new();
                let mut list = Vec::new();
                for d in all {
                    let st = status_json(book, d);
                    let state = st["status"].as_str().unwrap_or("off").to_owned();
                    let n = counts.get(&state).and_then(Value::as_u64).unwrap_or(0);
                    counts.insert(state.clone(), json!(n + 1));
                    let wanted = match &key {
                        Some(k) => book.resolve(k) == Some(d.id.as_str()),
                        None => only.as_deref().is_none_or(|o| o == state),
                    };
                    if wanted && list.len() < limit {
                        list.push(st);
                    }
                }
                if let (Some(k), true) = (&key, list.is_empty()) {
                    return json!({"missing": k});
                }
                json!({"learning_secs": secs, "counts": counts, "returned": list.len(), "devices": list})
            })
            .await?;
            if let Some(k) = v.get("missing").and_then(Value::as_str) {
                return Err(ToolError::NotFound(format!("no device {k:?} in the inventory")));
            }
            Ok(v)
        },
    )
}

fn get_device_learned_behavior(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "get_device_learned_behavior",
            title: "Device learned behaviour",
            description: "What a device normally does, as learnt: services it answers, ports and protocols it uses as a client, its peers, its mean bytes sent per hour; and the deviations seen since it was learnt.",
            input: input(device_props(), &[]),
            output: output(vec![
                ("status", any_object("Learning state")),
                ("baseline", any_object("services, client_ports, protocols, peers, many_peers, mean_hourly_bytes_out, hours_measured")),
                ("deviations", array("Deviations seen (kind:value), each reported once", string("Deviation"))),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let key = device_arg(&args)?;
            let v = devices(&ctx, move |book| {
                let Some(d) = book.resolve(&key).and_then(|id| book.get(id)) else {
                    return json!({"missing": key});
                };
                let b = &d.baseline;
                json!({
                    "status": status_json(book, d),
                    "baseline": {
                        "services": b.services, "client_ports": b.client_ports,
                        "protocols": b.protocols, "peers": b.peers, "many_peers": b.many_peers,
                        "mean_hourly_bytes_out": b.mean_hourly_bytes_out().map(f64::round),
                        "hours_measured": b.hourly_bytes_out.len(),
                    },
                    "deviations": b.deviations,
                })
            })
            .await?;
            if let Some(k) = v.get("missing").and_then(Value::as_str) {
                return Err(ToolError::NotFound(format!("no device {k:?} in the inventory")));
            }
            Ok(v)
        },
    )
}

fn save_device_learned_behavior(ctx: &Ctx) -> ToolDef {
    let mut props = device_props();
    props.extend([
        (
            "name",
            string_len("Name of the template (its id is made from it)", 1, 128),
        ),
        ("category", enumeration("Category", &CATEGORIES)),
        ("criticality", enumeration("Criticality", &CRITICALITIES)),
        (
            "assign",
            boolean("Also assign it to the device by hand", Some(true)),
        ),
    ]);
    tool(
        ctx,
        Spec {
            name: "save_device_learned_behavior",
            title: "Save device learned behaviour",
            description: "Freezes a device's learnt baseline into a template — the services it answers, its protocols and peers, its vendor and DHCP facts — so that it and devices like it are judged against it; by default the device is assigned to it.",
            input: input(props, &["name"]),
            output: output(vec![
                ("template", any_object("The template made")),
                ("device", any_object("The device")),
            ]),
            annotations: WRITE_ADDITIVE,
            scope: Scope::ReadWrite,
        },
        |ctx, _t, args| async move {
            let new = NewTemplate::from_args(&args)?;
            update(&ctx, move |book| {
                new.make(book, |d, mut t| {
                    let b = &d.baseline;
                    if b.learned_us.is_none() {
                        return Err(format!("{} is still learning (get_device_learning_status)", d.id));
                    }
                    t.services = b.services.iter().cloned().collect();
                    t.protocols = b.protocols.iter().cloned().collect();
                    if !b.many_peers {
                        t.peers = b.peers.iter().cloned().collect();
                    }
                    t.description = format!("Learnt behaviour of {}", d.id);
                    Ok(t)
                })
            })
            .await
        },
    )
}
