//! SOAR actions against a real PostgreSQL: one row per idempotency key, a decision only while
//! pending and unexpired, a run only once, expiry, and recovery after a crash mid-run.

use diesel::{Connection, PgConnection};
use netmonitor_store::soar::{self, NewAction};
use netmonitor_store::testing::TestDatabase;
use serde_json::json;

fn action(key: &str, needs_approval: bool, expires_in_secs: i64) -> NewAction {
    NewAction {
        key: key.into(),
        playbook: "contain".into(),
        action_index: 1,
        action_type: "block_ip".into(),
        target: "10.0.0.9".into(),
        needs_approval,
        approver_scope: "read_write".into(),
        proposed: json!({"command": ["nft", "add", "element"], "dry_run": true}),
        evidence: json!({"threat_type": "port_scan", "note": "nul \u{0} inside"}),
        expires_at: Some(chrono::Utc::now() + chrono::Duration::seconds(expires_in_secs)),
    }
}

#[test]
fn actions_are_proposed_once_decided_once_run_once_and_expire() {
    let t = TestDatabase::start().unwrap();
    let mut c = PgConnection::establish(&t.conninfo()).unwrap();
    let a = soar::propose(&mut c, &action("k1", true, 600))
        .unwrap()
        .unwrap();
    assert_eq!(a.state, "pending");
    assert!(
        soar::propose(&mut c, &action("k1", true, 600))
            .unwrap()
            .is_none(),
        "same key: no second row"
    );

    let d = soar::decide(&mut c, a.id, true, "analyst", Some(7), Some("ok"))
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            d.state.as_str(),
            d.decided_by.as_deref(),
            d.decided_by_token
        ),
        ("approved", Some("analyst"), Some(7))
    );
    assert!(
        soar::decide(&mut c, a.id, false, "other", None, None)
            .unwrap()
            .is_none(),
        "decided once"
    );
    assert!(soar::start(&mut c, a.id).unwrap());
    assert!(!soar::start(&mut c, a.id).unwrap(), "run once");
    soar::finish(&mut c, a.id, true, &json!({"exit_code": 0})).unwrap();
    assert_eq!(soar::get(&mut c, a.id).unwrap().unwrap().state, "executed");

    // Expired: neither decidable nor pending any more.
    let e = soar::propose(&mut c, &action("k2", true, -1))
        .unwrap()
        .unwrap();
    assert!(soar::decide(&mut c, e.id, true, "analyst", None, None)
        .unwrap()
        .is_none());
    assert_eq!(soar::expire(&mut c).unwrap(), 1);
    assert_eq!(soar::get(&mut c, e.id).unwrap().unwrap().state, "expired");

    // A playbook's own action is approved at once; a crash mid-run leaves it failed, not rerun.
    let auto = soar::propose(&mut c, &action("k3", false, 600))
        .unwrap()
        .unwrap();
    assert_eq!(
        (auto.state.as_str(), auto.decided_by.as_deref()),
        ("approved", Some("playbook"))
    );
    let waiting = soar::propose(&mut c, &action("k4", false, 600))
        .unwrap()
        .unwrap();
    assert!(soar::start(&mut c, auto.id).unwrap());
    let again = soar::recover(&mut c).unwrap();
    assert_eq!(again.iter().map(|r| r.id).collect::<Vec<_>>(), [waiting.id]);
    assert_eq!(soar::get(&mut c, auto.id).unwrap().unwrap().state, "failed");
}
