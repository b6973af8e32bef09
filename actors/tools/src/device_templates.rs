//! Device templates and classification tools (the seed's device management): list and read
//! templates, make one from a device, clone or edit one, assign one by hand, see why a device
//! was classified as it was and how the inventory is classified overall, and mark devices as
//! seen by someone. Answered by the device actor; what changes is saved with its next batch.

use crate::args::{invalid, Args};
use crate::devices::device_json;
use crate::schema::*;
use crate::support::*;
use netmonitor_devices::templates::{slug, CATEGORIES, CRITICALITIES};
use netmonitor_devices::{DeviceBook, Template, UpdateDevices};
use netmonitor_mcp::{Scope, ToolAnnotations, ToolDef, ToolError};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Most devices one bulk touch names.
const MAX_BULK: usize = 1000;

/// The tools of this module.
pub(crate) fn tools(ctx: &Ctx) -> Vec<ToolDef> {
    vec![
        get_device_templates(ctx),
        get_device_template_details(ctx),
        assign_device_template(ctx),
        create_template_from_device(ctx),
        clone_device_template(ctx),
        get_device_classification_stats(ctx),
        get_device_classification_hints(ctx),
        touch_device(ctx),
        touch_devices_bulk(ctx),
    ]
}

/// Runs `f` on the device book to change it.
pub(crate) async fn update(
    ctx: &Ctx,
    f: impl FnOnce(&mut DeviceBook) -> Result<Value, String> + Send + 'static,
) -> Result<Value, ToolError> {
    let actor = ctx
        .engine
        .devices
        .as_ref()
        .ok_or_else(|| ToolError::Unavailable("no device inventory in this process".into()))?;
    actor
        .send(UpdateDevices::new(f))
        .await
        .map_err(|e| ToolError::Unavailable(format!("device actor: {e}")))?
        .map_err(|m| {
            // The book says "no device …" / "no template …" for what does not exist.
            if m.starts_with("no ") {
                ToolError::NotFound(m)
            } else {
                ToolError::Failed(m)
            }
        })
}

/// The device a call names, if any: `device` (id, MAC or address) or `ip`.
pub(crate) fn device_key(args: &Args) -> Result<Option<String>, ToolError> {
    match args.opt_str("device")? {
        Some(d) => Ok(Some(d)),
        None => Ok(args.opt_ip("ip")?.map(|ip| ip.to_string())),
    }
}

/// The device a call must name.
pub(crate) fn device_arg(args: &Args) -> Result<String, ToolError> {
    device_key(args)?
        .ok_or_else(|| invalid("device", "is required (a device id, MAC or IP address)"))
}

fn resolve(book: &DeviceBook, key: &str) -> Result<String, String> {
    book.resolve(key)
        .map(str::to_owned)
        .ok_or_else(|| format!("no device {key:?} in the inventory (get_devices lists them)"))
}

fn str_list(args: &Args, k: &str) -> Result<Option<Vec<String>>, ToolError> {
    match args.value(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty() && s.len() <= 256)
                    .ok_or_else(|| invalid(k, "must be a list of non-empty strings"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(invalid(k, "must be a list of strings")),
    }
}

fn template_schema() -> Value {
    any_object("Template: id, name, category, criticality, description, built_in, services, protocols, peers, vendors, hostname_patterns, dhcp_vendor_classes, dhcp_fingerprints, created_from")
}

pub(crate) fn device_props() -> Vec<(&'static str, Value)> {
    vec![
        (
            "device",
            string_len("Device id (mac:…, ip:…), MAC or IP address", 1, 64),
        ),
        ("ip", ip("The device's IP address (instead of device)")),
    ]
}

fn get_device_templates(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "get_device_templates",
            title: "Device templates",
            description: "Lists device templates — the built-in ones (printer, IP camera, workstation, domain controller, DNS server, NAS, router/AP, VoIP phone, smart TV) and custom ones — with their category, criticality, expected services and protocols, the hints that classify devices as them, and how many devices each holds.",
            input: input(vec![("category", enumeration("Only this category", &CATEGORIES))], &[]),
            output: output(vec![
                ("returned", count("Templates in this answer")),
                ("templates", array("Templates", template_schema())),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let category = args.opt_str("category")?;
            devices(&ctx, move |book| {
                let mut held: BTreeMap<&str, u64> = BTreeMap::new();
                for d in book.iter() {
                    if let Some(t) = d.template.as_deref() {
                        *held.entry(t).or_default() += 1;
                    }
                }
                let list: Vec<Value> = book
                    .templates()
                    .iter()
                    .filter(|t| category.as_deref().is_none_or(|c| t.category == c))
                    .map(|t| {
                        let mut v = serde_json::to_value(t).unwrap_or_default();
                        v["devices"] = json!(held.get(t.id.as_str()).copied().unwrap_or(0));
                        v
                    })
                    .collect();
                json!({"returned": list.len(), "templates": list})
            })
            .await
        },
    )
}

fn get_device_template_details(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "get_device_template_details",
            title: "Device template details",
            description: "One template in full, with the devices assigned to it (by hand or by the classifier, with confidence).",
            input: input(
                vec![
                    ("template_id", string_len("Template id (get_device_templates)", 1, 64)),
                    ("limit", limit(1000, 100)),
                ],
                &["template_id"],
            ),
            output: output(vec![
                ("template", template_schema()),
                ("device_count", count("Devices assigned")),
                ("devices", array("Devices assigned, most recently seen first", any_object("Device"))),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let id = args.req_str("template_id")?;
            let limit = usize::try_from(args.i64_or("limit", 100, 1, 1000)?).unwrap_or(100);
            let v = devices(&ctx, move |book| {
                let Some(t) = book.template(&id) else {
                    return json!({"missing": id});
                };
                let held = book.search(&netmonitor_devices::DeviceQuery {
                    template: Some(t.id.clone()),
                    limit: usize::MAX,
                    ..Default::default()
                });
                let page: Vec<Value> = held.iter().take(limit).map(|d| device_json(d)).collect();
                json!({"template": t, "device_count": held.len(), "devices": page})
            })
            .await?;
            if let Some(id) = v.get("missing").and_then(Value::as_str) {
                return Err(ToolError::NotFound(format!("no template {id:?} (get_device_templates lists them)")));
            }
            Ok(v)
        },
    )
}

fn assign_device_template(ctx: &Ctx) -> ToolDef {
    let mut props = device_props();
    props.extend([
        (
            "template_id",
            string_len(
                "Template id; omit (with release=true) to go back to automatic classification",
                1,
                64,
            ),
        ),
        (
            "release",
            boolean(
                "Drop the hand assignment and let the classifier decide again",
                Some(false),
            ),
        ),
        (
            "criticality",
            enumeration(
                "Set this device's criticality by hand (risk scoring reads it)",
                &CRITICALITIES,
            ),
        ),
    ]);
    tool(
        ctx,
        Spec {
            name: "assign_device_template",
            title: "Assign device template",
            description: "Classifies a device by hand: the template (and optionally a criticality) sticks, whatever the classifier later thinks, until released.",
            input: input(props, &[]),
            output: output(vec![("device", any_object("The device after the change"))]),
            annotations: WRITE_IDEMPOTENT,
            scope: Scope::ReadWrite,
        },
        |ctx, _t, args| async move {
            let key = device_arg(&args)?;
            let template = args.opt_str("template_id")?;
            let release = args.bool_or("release", false)?;
            let criticality = args.opt_str("criticality")?;
            if template.is_none() && !release && criticality.is_none() {
                return Err(invalid("template_id", "is required (or release=true, or criticality)"));
            }
            update(&ctx, move |book| {
                let id = resolve(book, &key)?;
                if template.is_some() || release {
                    book.assign(&id, if release { None } else { template.as_deref() })?;
                }
                if criticality.is_some() {
                    book.set_criticality(&id, criticality.as_deref())?;
                }
                let d = book.get(&id).ok_or("device gone")?;
                let mut v = device_json(d);
                v["criticality_in_force"] = json!(book.criticality(d));
                Ok(json!({ "device": v }))
            })
            .await
        },
    )
}

fn create_template_from_device(ctx: &Ctx) -> ToolDef {
    let mut props = device_props();
    props.extend([
        (
            "name",
            string_len("Template name (its id is made from it)", 1, 128),
        ),
        ("category", enumeration("Category", &CATEGORIES)),
        (
            "criticality",
            enumeration("Criticality of devices of this kind", &CRITICALITIES),
        ),
        ("description", string_len("What it is", 1, 512)),
        (
            "assign",
            boolean("Also assign it to the device by hand", Some(true)),
        ),
    ]);
    tool(
        ctx,
        Spec {
            name: "create_template_from_device",
            title: "Create template from device",
            description: "Learns a new template from what a device showed — its services, protocols, MAC vendor, DHCP vendor class and fingerprint — so that devices like it are classified as it; by default the device is assigned to it.",
            input: input(props, &["name"]),
            output: output(vec![
                ("template", template_schema()),
                ("device", any_object("The device")),
            ]),
            annotations: WRITE_ADDITIVE,
            scope: Scope::ReadWrite,
        },
        |ctx, _t, args| async move {
            let new = NewTemplate::from_args(&args)?;
            update(&ctx, move |book| new.make(book, |_, t| Ok(t))).await
        },
    )
}

/// A template to be made from a device (`create_template_from_device`,
/// `save_device_learned_behavior`): what the call asked for.
pub(crate) struct NewTemplate {
    key: String,
    id: String,
    name: String,
    category: String,
    criticality: Option<String>,
    description: Option<String>,
    assign: bool,
}

impl NewTemplate {
    /// Reads `device`/`ip`, `name` (its id is made from it), `category` (default other),
    /// `criticality`, `description` and `assign` (default true).
    pub(crate) fn from_args(args: &Args) -> Result<Self, ToolError> {
        let key = device_arg(args)?;
        let name = args.req_str("name")?;
        let id = slug(&name);
        if id.is_empty() {
            return Err(invalid("name", "needs at least one letter or digit"));
        }
        Ok(NewTemplate {
            key,
            id,
            name,
            category: args.opt_str("category")?.unwrap_or_else(|| "other".into()),
            criticality: args.opt_str("criticality")?,
            description: args.opt_str("description")?,
            assign: args.bool_or("assign", true)?,
        })
    }

    /// Makes the template from the device (`shape` adjusts or refuses what the device showed),
    /// keeps it and, if asked, assigns it to the device by hand.
    pub(crate) fn make(
        self,
        book: &mut DeviceBook,
        shape: impl FnOnce(&netmonitor_devices::Device, Template) -> Result<Template, String>,
    ) -> Result<Value, String> {
        if book.template(&self.id).is_some() {
            return Err(format!(
                "a template {:?} exists (choose another name)",
                self.id
            ));
        }
        let dev = resolve(book, &self.key)?;
        let d = book.get(&dev).ok_or("device gone")?;
        let mut t = shape(
            d,
            Template::from_device(&self.id, &self.name, &self.category, d),
        )?;
        if let Some(c) = self.criticality {
            t.criticality = c;
        }
        if let Some(desc) = self.description {
            t.description = desc;
        }
        book.put_template(t.clone())?;
        if self.assign {
            book.assign(&dev, Some(&self.id))?;
        }
        let d = book.get(&dev).ok_or("device gone")?;
        Ok(json!({"template": t, "device": device_json(d)}))
    }
}

fn clone_device_template(ctx: &Ctx) -> ToolDef {
    let list = |d: &str| array(d, string("Value"));
    tool(
        ctx,
        Spec {
            name: "clone_device_template",
            title: "Clone or edit device template",
            description: "Copies a template (built-in or custom) under a new name, changing what is given; naming a custom template as both source and `name` edits it in place. Built-in templates are never changed.",
            input: input(
                vec![
                    ("template_id", string_len("Template to copy", 1, 64)),
                    ("name", string_len("Name of the copy (its id is made from it)", 1, 128)),
                    ("category", enumeration("Category", &CATEGORIES)),
                    ("criticality", enumeration("Criticality", &CRITICALITIES)),
                    ("description", string_len("What it is", 1, 512)),
                    ("services", list("Expected services (tcp/631)")),
                    ("protocols", list("Expected application protocols")),
                    ("peers", list("Expected peer addresses or networks")),
                    ("vendors", list("MAC vendor substrings")),
                    ("hostname_patterns", list("Host-name substrings")),
                    ("dhcp_vendor_classes", list("DHCP vendor class substrings")),
                    ("dhcp_fingerprints", list("DHCP fingerprints (1,3,6,15,…)")),
                    ("capabilities", list("LLDP/CDP capabilities (router, bridge, wlan-ap, telephone, …)")),
                ],
                &["template_id", "name"],
            ),
            output: output(vec![
                ("template", template_schema()),
                ("edited", boolean("Whether an existing custom template was changed", None)),
            ]),
            annotations: WRITE_IDEMPOTENT,
            scope: Scope::ReadWrite,
        },
        |ctx, _t, args| async move {
            let from = args.req_str("template_id")?;
            let name = args.req_str("name")?;
            let id = slug(&name);
            if id.is_empty() {
                return Err(invalid("name", "needs at least one letter or digit"));
            }
            let mut lists = Vec::new();
            for k in ["services", "protocols", "peers", "vendors", "hostname_patterns", "dhcp_vendor_classes", "dhcp_fingerprints", "capabilities"] {
                lists.push((k, str_list(&args, k)?));
            }
            let (category, criticality, description) = (
                args.opt_str("category")?,
                args.opt_str("criticality")?,
                args.opt_str("description")?,
            );
            update(&ctx, move |book| {
                let source = book
                    .template(&from)
                    .cloned()
                    .ok_or_else(|| format!("no template {from:?} (get_device_templates lists them)"))?;
                let edited = id == from && !source.built_in;
                if !edited && book.template(&id).is_some() {
                    return Err(format!("a template {id:?} exists (choose another name)"));
                }
                let mut t = Template { id: id.clone(), name, built_in: false, ..source };
                if let Some(c) = category { t.category = c; }
                if let Some(c) = criticality { t.criticality = c; }
                if let Some(d) = description { t.description = d; }
                for (k, v) in lists {
                    let Some(v) = v else { continue };
                    match k {
                        "services" => t.services = v,
                        "protocols" => t.protocols = v,
                        "peers" => t.peers = v,
                        "vendors" => t.vendors = v,
                        "hostname_patterns" => t.hostname_patterns = v,
                        "dhcp_vendor_classes" => t.dhcp_vendor_classes = v,
                        "capabilities" => t.capabilities = v,
                        _ => t.dhcp_fingerprints = v,
                    }
                }
                book.put_template(t.clone())?;
                Ok(json!({"template": t, "edited": edited}))
            })
            .await
        },
    )
}

fn get_device_classification_stats(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "get_device_classification_stats",
            title: "Device classification statistics",
            description: "How the inventory is classified: devices per template and per category, by hand or by the classifier, unclassified ones, and the classifier's mean confidence.",
            input: input(vec![], &[]),
            output: output(vec![
                ("total_devices", count("Devices")),
                ("classified", count("With a template")),
                ("unclassified", count("Without one")),
                ("manual", count("Assigned by hand")),
                ("automatic", count("Assigned by the classifier")),
                ("mean_confidence", number("Mean confidence of automatic assignments")),
                ("by_template", any_object("Devices per template id")),
                ("by_category", any_object("Devices per category")),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, _args| async move {
            devices(&ctx, |book| {
                let all: Vec<&netmonitor_devices::Device> = book.iter().collect();
                let (mut manual, mut auto, mut conf) = (0u64, 0u64, 0.0f64);
                let mut by_t: BTreeMap<String, u64> = BTreeMap::new();
                let mut by_c: BTreeMap<String, u64> = BTreeMap::new();
                for d in &all {
                    let Some(t) = d.template.as_deref() else { continue };
                    if d.template_manual {
                        manual += 1;
                    } else {
                        auto += 1;
                        conf += d.template_confidence;
                    }
                    *by_t.entry(t.to_owned()).or_default() += 1;
                    let cat = book.template(t).map_or("other", |t| t.category.as_str());
                    *by_c.entry(cat.to_owned()).or_default() += 1;
                }
                let mean = if auto > 0 { (conf / auto as f64 * 100.0).round() / 100.0 } else { 0.0 };
                json!({"total_devices": all.len(), "classified": manual + auto,
                       "unclassified": all.len() as u64 - manual - auto, "manual": manual,
                       "automatic": auto, "mean_confidence": mean,
                       "by_template": by_t, "by_category": by_c})
            })
            .await
        },
    )
}

fn get_device_classification_hints(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "get_device_classification_hints",
            title: "Device classification hints",
            description: "Why a device is classified as it is: the facts it showed (MAC vendor, DHCP vendor class and fingerprint, host names, services) and every template's fit to them with the hints that matched, best first.",
            input: input(device_props(), &[]),
            output: output(vec![
                ("device", any_object("The device")),
                ("assigned", opt_object("Current assignment: template, confidence, manual, hints")),
                ("fits", array("Every template's fit, best first", any_object("template, confidence, hints"))),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, args| async move {
            let key = device_arg(&args)?;
            let v = devices(&ctx, move |book| {
                let Some(id) = book.resolve(&key) else {
                    return json!({"missing": key});
                };
                let d = &book.get(id).cloned().unwrap_or_default();
                let assigned = d.template.as_ref().map(|t| json!({"template": t, "confidence": d.template_confidence,
                    "manual": d.template_manual, "hints": d.template_hints}));
                json!({"device": device_json(d), "assigned": assigned, "fits": book.fits(id).unwrap_or_default()})
            })
            .await?;
            if let Some(k) = v.get("missing").and_then(Value::as_str) {
                return Err(ToolError::NotFound(format!("no device {k:?} in the inventory")));
            }
            Ok(v)
        },
    )
}

fn touch_device(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "touch_device",
            title: "Touch device",
            description: "Marks a device as seen and confirmed by someone now (kept as touched_at; it does not change what the sensor saw).",
            input: input(device_props(), &[]),
            output: output(vec![("device", any_object("The device after the change"))]),
            annotations: WRITE_IDEMPOTENT,
            scope: Scope::ReadWrite,
        },
        |ctx, _t, args| async move {
            let key = device_arg(&args)?;
            let now = netmonitor_common::Timestamp::now().0;
            update(&ctx, move |book| {
                let id = resolve(book, &key)?;
                let d = book.touch(&id, now).ok_or("device gone")?;
                Ok(json!({"device": device_json(d)}))
            })
            .await
        },
    )
}

fn touch_devices_bulk(ctx: &Ctx) -> ToolDef {
    tool(
        ctx,
        Spec {
            name: "touch_devices_bulk",
            title: "Touch devices in bulk",
            description: "Marks many devices (ids, MACs or IP addresses; at most 1000) as seen and confirmed now; says which were not found.",
            input: input(
                vec![("devices", array("Device ids, MACs or IP addresses", string("Device")))],
                &["devices"],
            ),
            output: output(vec![
                ("touched", count("Devices marked")),
                ("not_found", array("Names that matched no device", string("Name"))),
            ]),
            annotations: WRITE_IDEMPOTENT,
            scope: Scope::ReadWrite,
        },
        |ctx, _t, args| async move {
            let keys = str_list(&args, "devices")?.unwrap_or_default();
            if keys.is_empty() || keys.len() > MAX_BULK {
                return Err(invalid("devices", format!("must name 1 to {MAX_BULK} devices")));
            }
            let now = netmonitor_common::Timestamp::now().0;
            update(&ctx, move |book| {
                let mut touched = 0u64;
                let mut missing = Vec::new();
                for k in keys {
                    match book.resolve(&k).map(str::to_owned) {
                        Some(id) => {
                            book.touch(&id, now);
                            touched += 1;
                        }
                        None => missing.push(k),
                    }
                }
                Ok(json!({"touched": touched, "not_found": missing}))
            })
            .await
        },
    )
}
