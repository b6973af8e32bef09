//! Live configuration: `set_config_parameter` on a detection threshold changes what the running
//! engine detects from the next packets on, without a restart, and the override survives one.

use crate::util::*;
use netmonitor_capture::synth::{krb_error, krb_request, KrbSpec, Synth, XorShift};
use netmonitor_common::Timestamp;
use serde_json::json;
use std::fs::File;
use std::path::Path;
use std::time::Duration;

/// A FIFO the service reads as `--pcap`, and the synthesizer writing into it.
fn fifo_capture(dir: &Path, name: &str) -> (String, std::thread::JoinHandle<Synth<File>>) {
    let fifo = dir.join(name);
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let path = fifo.clone();
    let writer = std::thread::spawn(move || {
        let out = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        Synth::new(out, 5, Timestamp::from_secs_micros(1_750_000_000, 0)).unwrap()
    });
    (fifo.to_string_lossy().into_owned(), writer)
}

/// `users` distinct accounts failing pre-authentication from `client`, one AS-REQ and one
/// KDC_ERR_PREAUTH_FAILED each.
fn spray(s: &mut Synth<File>, client: [u8; 4], users: &[&str]) {
    let kdc = [10, 9, 0, 1];
    let krbtgt = ["krbtgt", "CORP.TEST"];
    let mut rng = XorShift::new(9);
    for (i, user) in users.iter().enumerate() {
        let k = KrbSpec {
            realm: "CORP.TEST",
            cname: user,
            sname: &krbtgt,
            etypes: &[18, 17],
            ticket_etype: 18,
            reply_etype: 18,
            now: s.now(),
        };
        let req = krb_request(&mut rng, &k, false);
        let err = krb_error(&k, 24);
        s.udp_exchange(client, kdc, 50_000 + i as u16, 88, &req, &err)
            .unwrap();
    }
}

/// Enough unrelated packets to push a partly filled capture batch through (a file source sends
/// full batches; this FIFO never ends).
fn push_through(s: &mut Synth<File>) {
    for _ in 0..300 {
        let f = netmonitor_capture::synth::build::eth_ipv4_udp(
            [10, 0, 0, 99],
            [10, 0, 0, 98],
            9,
            9,
            b"x",
        );
        s.frame(&f).unwrap();
    }
}

fn spray_alerts(s: &McpSession, client: &str) -> i64 {
    let r = s.call(
        "get_kerberos_attacks",
        json!({"since": "2000-01-01T00:00:00Z"}),
    );
    r["structuredContent"]["attacks"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|x| x["threat_type"] == "password_spraying" && x["src_ip"] == client)
                .count() as i64
        })
        .unwrap_or(0)
}

#[test]
fn a_threshold_changed_live_applies_at_once_and_survives_a_restart() {
    let dir = data_dir();
    let (fifo, writer) = fifo_capture(dir.path(), "a.pcap");
    let (child, port) = start_service_with(dir.path(), &[], &["--pcap", &fifo]);
    let mut synth = writer.join().unwrap();
    let admin = create_token(dir.path(), "admin", "admin");
    let s = McpSession::open(port, &admin);

    let five = ["u1", "u2", "u3", "u4", "u5"];
    spray(&mut synth, [10, 0, 0, 11], &five);
    push_through(&mut synth);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(spray_alerts(&s, "10.0.0.11"), 0, "5 accounts < default 10");

    let r = s.call(
        "set_config_parameter",
        json!({"key": "detection.kerberos.spray_distinct_users", "value": 3}),
    );
    assert_eq!(r["isError"], false, "{r}");
    assert_eq!(r["structuredContent"]["old_value"], 10);
    assert_eq!(r["structuredContent"]["new_value"], 3);
    // a key that needs a restart is refused, naming why
    let r = s.call(
        "set_config_parameter",
        json!({"key": "http.port", "value": 9}),
    );
    assert_eq!(r["isError"], true);
    assert!(r["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("restart"));

    spray(&mut synth, [10, 0, 0, 12], &five);
    push_through(&mut synth);
    wait_for(
        "a spraying alert under the new threshold",
        Duration::from_secs(10),
        || spray_alerts(&s, "10.0.0.12") >= 1,
    );
    drop(synth);
    drop(child);

    // a restart applies the stored override again
    let (fifo, writer) = fifo_capture(dir.path(), "b.pcap");
    let (_child, port) = start_service_with(dir.path(), &[], &["--pcap", &fifo]);
    let mut synth = writer.join().unwrap();
    let s = McpSession::open(port, &admin);
    let params = s.call(
        "get_config_parameters",
        json!({"prefix": "detection.kerberos.spray"}),
    );
    let p = &params["structuredContent"]["parameters"][0];
    assert_eq!(p["key"], "detection.kerberos.spray_distinct_users");
    assert_eq!(p["value"], 3);
    assert_eq!(p["source"], "override");
    assert_eq!(p["live"], true);
    spray(&mut synth, [10, 0, 0, 13], &five);
    push_through(&mut synth);
    wait_for(
        "a spraying alert after the restart",
        Duration::from_secs(10),
        || spray_alerts(&s, "10.0.0.13") >= 1,
    );
}
