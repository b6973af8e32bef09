//! SOAR actions: proposed once per idempotency key, decided and executed by conditional
//! updates (a state moves only from the one it is expected to be in), listed for the tools.

use crate::copy::{clean_json, clean_text};
use crate::StoreError;
use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Bool, Int2, Jsonb, Nullable, Text, Timestamptz};
use diesel::{PgConnection, QueryableByName};
use diesel_async::AsyncPgConnection;
use serde::Serialize;

/// One action as stored.
#[derive(Debug, Clone, QueryableByName, Serialize)]
pub struct ActionRow {
    /// Number.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// Playbook, action, target and triggering alert, hashed into one key.
    #[diesel(sql_type = Text)]
    pub idempotency_key: String,
    /// Playbook name.
    #[diesel(sql_type = Text)]
    pub playbook: String,
    /// Position of the action in the playbook.
    #[diesel(sql_type = Int2)]
    pub action_index: i16,
    /// `notify`, `block_ip`, …
    #[diesel(sql_type = Text)]
    pub action_type: String,
    /// What it acts on (an address, a domain, a device).
    #[diesel(sql_type = Text)]
    pub target: String,
    /// pending, approved, rejected, expired, executing, executed, failed.
    #[diesel(sql_type = Text)]
    pub state: String,
    /// Whether a person must approve it.
    #[diesel(sql_type = Bool)]
    pub needs_approval: bool,
    /// Scope an approver needs (`read_write` or `admin`).
    #[diesel(sql_type = Text)]
    pub approver_scope: String,
    /// What would run: the command, the request, its parameters.
    #[diesel(sql_type = Jsonb)]
    pub proposed: serde_json::Value,
    /// The triggering alert.
    #[diesel(sql_type = Jsonb)]
    pub evidence: serde_json::Value,
    /// Proposed at.
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    /// A pending action expires at.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Approved or rejected at.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub decided_at: Option<DateTime<Utc>>,
    /// Who decided (token name, or `playbook` for automatic actions).
    #[diesel(sql_type = Nullable<Text>)]
    pub decided_by: Option<String>,
    /// Their token id.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub decided_by_token: Option<i64>,
    /// Their reason.
    #[diesel(sql_type = Nullable<Text>)]
    pub reason: Option<String>,
    /// Run at.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub executed_at: Option<DateTime<Utc>>,
    /// What running it gave (status, excerpts, duration).
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub outcome: Option<serde_json::Value>,
}

/// A new proposal.
#[derive(Debug, Clone)]
pub struct NewAction {
    /// Idempotency key.
    pub key: String,
    /// Playbook.
    pub playbook: String,
    /// Action position.
    pub action_index: i16,
    /// Action type.
    pub action_type: String,
    /// Target.
    pub target: String,
    /// Whether it waits for approval (else it is approved by the playbook).
    pub needs_approval: bool,
    /// Approver scope.
    pub approver_scope: String,
    /// Proposed command or request.
    pub proposed: serde_json::Value,
    /// Triggering alert.
    pub evidence: serde_json::Value,
    /// When a pending action expires.
    pub expires_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, idempotency_key, playbook, action_index, action_type, target, state, \
    needs_approval, approver_scope, proposed, evidence, created_at, expires_at, decided_at, \
    decided_by, decided_by_token, reason, executed_at, outcome";

/// Writes a proposal unless its key exists; answers the row when it is new.
pub fn propose(conn: &mut PgConnection, a: &NewAction) -> Result<Option<ActionRow>, StoreError> {
    use diesel::RunQueryDsl;
    let state = if a.needs_approval {
        "pending"
    } else {
        "approved"
    };
    let rows: Vec<ActionRow> = diesel::sql_query(format!(
        "INSERT INTO soar_actions (idempotency_key, playbook, action_index, action_type, target, state, \
           needs_approval, approver_scope, proposed, evidence, expires_at, decided_at, decided_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
           CASE WHEN $7 THEN NULL ELSE now() END, CASE WHEN $7 THEN NULL ELSE 'playbook' END) \
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING {COLUMNS}"
    ))
    .bind::<Text, _>(clean_text(&a.key).into_owned())
    .bind::<Text, _>(clean_text(&a.playbook).into_owned())
    .bind::<Int2, _>(a.action_index)
    .bind::<Text, _>(&a.action_type)
    .bind::<Text, _>(clean_text(&a.target).into_owned())
    .bind::<Text, _>(state)
    .bind::<Bool, _>(a.needs_approval)
    .bind::<Text, _>(&a.approver_scope)
    .bind::<Jsonb, _>(clean_json(&a.proposed).into_owned())
    .bind::<Jsonb, _>(clean_json(&a.evidence).into_owned())
    .bind::<Nullable<Timestamptz>, _>(a.expires_at)
    .load(conn)?;
    Ok(rows.into_iter().next())
}

/// One action.
pub fn get(conn: &mut PgConnection, id: i64) -> Result<Option<ActionRow>, StoreError> {
    use diesel::RunQueryDsl;
    let rows: Vec<ActionRow> =
        diesel::sql_query(format!("SELECT {COLUMNS} FROM soar_actions WHERE id = $1"))
            .bind::<BigInt, _>(id)
            .load(conn)?;
    Ok(rows.into_iter().next())
}

/// Approves or rejects a pending, unexpired action; `None` when it is not pending (decided,
/// expired or unknown): nothing is decided twice.
pub fn decide(
    conn: &mut PgConnection,
    id: i64,
    approve: bool,
    by: &str,
    by_token: Option<i64>,
    reason: Option<&str>,
) -> Result<Option<ActionRow>, StoreError> {
    use diesel::RunQueryDsl;
    let rows: Vec<ActionRow> = diesel::sql_query(format!(
        "UPDATE soar_actions SET state = $2, decided_at = now(), decided_by = $3, \
           decided_by_token = $4, reason = $5 \
         WHERE id = $1 AND state = 'pending' AND (expires_at IS NULL OR expires_at > now()) \
         RETURNING {COLUMNS}"
    ))
    .bind::<BigInt, _>(id)
    .bind::<Text, _>(if approve { "approved" } else { "rejected" })
    .bind::<Text, _>(clean_text(by).into_owned())
    .bind::<Nullable<BigInt>, _>(by_token)
    .bind::<Nullable<Text>, _>(reason.map(|r| clean_text(r).into_owned()))
    .load(conn)?;
    Ok(rows.into_iter().next())
}

/// Moves an approved action to `executing`; false when another run took it first.
pub fn start(conn: &mut PgConnection, id: i64) -> Result<bool, StoreError> {
    use diesel::RunQueryDsl;
    let n = diesel::sql_query(
        "UPDATE soar_actions SET state = 'executing' WHERE id = $1 AND state = 'approved'",
    )
    .bind::<BigInt, _>(id)
    .execute(conn)?;
    Ok(n == 1)
}

/// Records how an execution ended.
pub fn finish(
    conn: &mut PgConnection,
    id: i64,
    ok: bool,
    outcome: &serde_json::Value,
) -> Result<(), StoreError> {
    use diesel::RunQueryDsl;
    diesel::sql_query(
        "UPDATE soar_actions SET state = $2, executed_at = now(), outcome = $3 \
         WHERE id = $1 AND state = 'executing'",
    )
    .bind::<BigInt, _>(id)
    .bind::<Text, _>(if ok { "executed" } else { "failed" })
    .bind::<Jsonb, _>(clean_json(outcome).into_owned())
    .execute(conn)?;
    Ok(())
}

/// Expires pending actions past their time; answers how many.
pub fn expire(conn: &mut PgConnection) -> Result<usize, StoreError> {
    use diesel::RunQueryDsl;
    Ok(diesel::sql_query(
        "UPDATE soar_actions SET state = 'expired', decided_at = now(), decided_by = 'expiry' \
         WHERE state = 'pending' AND expires_at <= now()",
    )
    .execute(conn)?)
}

/// Approved actions not yet run (after a restart), and actions a crash left `executing`
/// (marked failed: whether they ran is unknown, and they are never run twice).
pub fn recover(conn: &mut PgConnection) -> Result<Vec<ActionRow>, StoreError> {
    use diesel::RunQueryDsl;
    diesel::sql_query(
        "UPDATE soar_actions SET state = 'failed', executed_at = now(), \
           outcome = '{\"error\": \"interrupted by a restart while running; not run again\"}' \
         WHERE state = 'executing'",
    )
    .execute(conn)?;
    Ok(diesel::sql_query(format!(
        "SELECT {COLUMNS} FROM soar_actions WHERE state = 'approved' ORDER BY id"
    ))
    .load(conn)?)
}

/// Filters of [`list`].
#[derive(Debug, Clone, Default)]
pub struct ActionFilter {
    /// Only these states.
    pub states: Vec<String>,
    /// Only this playbook.
    pub playbook: Option<String>,
    /// Only this target.
    pub target: Option<String>,
    /// Only actions older than this id (cursor).
    pub before_id: Option<i64>,
    /// Page size.
    pub limit: i64,
}

/// Actions, newest first.
pub async fn list(
    conn: &mut AsyncPgConnection,
    f: &ActionFilter,
) -> Result<Vec<ActionRow>, StoreError> {
    use diesel_async::RunQueryDsl;
    Ok(diesel::sql_query(format!(
        "SELECT {COLUMNS} FROM soar_actions \
         WHERE (cardinality($1::text[]) = 0 OR state = ANY($1)) \
           AND ($2::text IS NULL OR playbook = $2) AND ($3::text IS NULL OR target = $3) \
           AND ($4::int8 IS NULL OR id < $4) \
         ORDER BY id DESC LIMIT $5"
    ))
    .bind::<Array<Text>, _>(&f.states)
    .bind::<Nullable<Text>, _>(f.playbook.as_deref())
    .bind::<Nullable<Text>, _>(f.target.as_deref())
    .bind::<Nullable<BigInt>, _>(f.before_id)
    .bind::<BigInt, _>(f.limit)
    .load(conn)
    .await?)
}
