//! API tokens: only a hash of each secret is stored; the secret is shown once at creation.

use crate::schema::api_tokens;
use crate::StoreError;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

/// A stored token as listed to operators (never the secret).
#[derive(Queryable, Selectable, Debug, Clone, Serialize)]
#[diesel(table_name = api_tokens)]
#[allow(missing_docs)]
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub token_hash: String,
    pub scope: String,
    pub rate_per_minute: Option<i32>,
    pub rate_per_hour: Option<i32>,
    pub rate_per_day: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// What `tokens create` stores.
#[derive(Insertable, Debug, Clone)]
#[diesel(table_name = api_tokens)]
#[allow(missing_docs)]
pub struct NewToken {
    pub name: String,
    pub token_hash: String,
    pub scope: String,
    pub rate_per_minute: Option<i32>,
    pub rate_per_hour: Option<i32>,
    pub rate_per_day: Option<i32>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Inserts a token and returns its id.
pub async fn create(conn: &mut AsyncPgConnection, token: &NewToken) -> Result<i64, StoreError> {
    if !matches!(token.scope.as_str(), "read_only" | "read_write" | "admin") {
        return Err(StoreError::Invalid(format!(
            "scope must be read_only, read_write or admin, not {:?}",
            token.scope
        )));
    }
    let token = NewToken {
        name: crate::copy::clean_text(&token.name).into_owned(),
        ..token.clone()
    };
    Ok(diesel::insert_into(api_tokens::table)
        .values(&token)
        .returning(api_tokens::id)
        .get_result(conn)
        .await?)
}

/// All tokens, newest first.
pub async fn list(conn: &mut AsyncPgConnection) -> Result<Vec<TokenRow>, StoreError> {
    Ok(api_tokens::table
        .select(TokenRow::as_select())
        .order(api_tokens::id.desc())
        .load(conn)
        .await?)
}

/// Marks a token revoked; false when no active token has that id.
pub async fn revoke(conn: &mut AsyncPgConnection, id: i64) -> Result<bool, StoreError> {
    let n = diesel::update(
        api_tokens::table
            .filter(api_tokens::id.eq(id))
            .filter(api_tokens::revoked_at.is_null()),
    )
    .set(api_tokens::revoked_at.eq(Utc::now()))
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// The token with this secret hash, revoked or not (the caller decides).
pub async fn find_by_hash(
    conn: &mut AsyncPgConnection,
    hash: &str,
) -> Result<Option<TokenRow>, StoreError> {
    Ok(api_tokens::table
        .filter(api_tokens::token_hash.eq(hash))
        .select(TokenRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Which of `ids` may no longer be used: revoked, expired or deleted.
pub async fn unusable(conn: &mut AsyncPgConnection, ids: &[i64]) -> Result<Vec<i64>, StoreError> {
    let usable: Vec<i64> = api_tokens::table
        .filter(api_tokens::id.eq_any(ids))
        .filter(api_tokens::revoked_at.is_null())
        .filter(
            api_tokens::expires_at
                .is_null()
                .or(api_tokens::expires_at.gt(Utc::now())),
        )
        .select(api_tokens::id)
        .load(conn)
        .await?;
    Ok(ids
        .iter()
        .copied()
        .filter(|i| !usable.contains(i))
        .collect())
}
