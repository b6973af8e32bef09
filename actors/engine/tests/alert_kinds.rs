//! Every alert kind a detector can raise has its ATT&CK entry in the one table
//! (`netmonitor_common::mitre::ALERT_KINDS`), and the table lists no kind nobody raises. The
//! kinds are read from the detectors' sources, in the three shapes they are written in: a
//! `threat_type: "kind"` field, a behaviour rule `NAME = 9_5xx_xxx, "kind", …`, and a TLS
//! `alert(…, "kind", &["T…"], …)` call.

use netmonitor_common::mitre::ALERT_KINDS;
use std::collections::BTreeSet;
use std::path::Path;

fn sources(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_none_or(|n| n != "tests.rs")
        {
            let text = std::fs::read_to_string(&path).unwrap();
            // Test modules come last in a file; what they raise is made up.
            let code = text.split("#[cfg(test)]").next().unwrap_or("").to_owned();
            out.push(code);
        }
    }
}

fn literal_after(s: &str) -> Option<&str> {
    let s = s.trim_start().strip_prefix('"')?;
    let end = s.find('"')?;
    let kind = &s[..end];
    kind.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        .then_some(kind)
}

fn raised_kinds() -> BTreeSet<String> {
    let actors = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for krate in ["tls", "kerberos", "intel", "behaviour", "devices", "risk"] {
        sources(&actors.join(krate).join("src"), &mut files);
    }
    let mut kinds = BTreeSet::new();
    for code in &files {
        for (i, _) in code.match_indices("threat_type: ") {
            if let Some(k) = literal_after(&code[i + "threat_type: ".len()..]) {
                kinds.insert(k.to_owned());
            }
        }
        let lines: Vec<&str> = code.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            let t = line.trim();
            if let Some(rest) = t.split_once(" = 9_").map(|x| x.1) {
                if let Some(k) = rest.split_once(", ").and_then(|x| literal_after(x.1)) {
                    kinds.insert(k.to_owned());
                }
            }
            let next = lines.get(n + 1).map(|l| l.trim()).unwrap_or("");
            if t.ends_with("\",") && next.starts_with("&[\"T") {
                if let Some(k) = literal_after(t) {
                    kinds.insert(k.to_owned());
                }
            }
        }
    }
    kinds
}

#[test]
fn every_raised_kind_has_its_attack_entry_and_every_entry_is_raised() {
    let raised = raised_kinds();
    assert!(
        raised.len() >= 30,
        "the scan found the detectors: {raised:?}"
    );
    let table: BTreeSet<String> = ALERT_KINDS.iter().map(|(k, _)| k.to_string()).collect();
    let missing: Vec<&String> = raised.difference(&table).collect();
    assert!(
        missing.is_empty(),
        "raised but not in mitre::ALERT_KINDS: {missing:?}"
    );
    let stale: Vec<&String> = table.difference(&raised).collect();
    assert!(
        stale.is_empty(),
        "in the table but raised nowhere: {stale:?}"
    );
}
