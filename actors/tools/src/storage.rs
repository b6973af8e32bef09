//! Storage visibility: how large each event table, rollup and registry is, how many daily
//! partitions it spans and how many days its retention keeps, read from PostgreSQL's catalog.

use crate::schema::*;
use crate::support::*;
use netmonitor_mcp::{Scope, ToolAnnotations, ToolDef};
use netmonitor_store::partitions::{table_storage, Retention};
use serde_json::json;

/// The tools of this module.
pub(crate) fn tools(ctx: &Ctx) -> Vec<ToolDef> {
    vec![get_storage_status(ctx)]
}

fn get_storage_status(ctx: &Ctx) -> ToolDef {
    let table = object(
        vec![
            ("table", string("Table name")),
            (
                "bytes",
                count("Disk bytes: rows, indexes and TOAST of every partition"),
            ),
            (
                "rows_estimate",
                count("Rows, as the planner estimates them (updated by autovacuum)"),
            ),
            ("partitions", count("Daily partitions (0: not partitioned)")),
            ("oldest_partition", opt_string("Oldest day held, YYYYMMDD")),
            (
                "newest_partition",
                opt_string("Newest day prepared, YYYYMMDD (days ahead included)"),
            ),
            (
                "default_rows_estimate",
                count("Rows outside every daily partition (timestamps far from the rest)"),
            ),
            (
                "retention_days",
                opt_int(
                    "Days kept, counted back from the newest row; null: kept until removed by hand",
                ),
            ),
        ],
        &["table", "bytes", "rows_estimate", "partitions"],
    );
    tool(
        ctx,
        Spec {
            name: "get_storage_status",
            title: "Storage status",
            description: "What the database holds: for each event table (flows, alerts, TLS sessions, Kerberos and application events, the MCP audit trail), the hourly rollups and the other large tables, its disk size, estimated rows, the daily partitions it spans (oldest and newest day) and the days its retention keeps. Retention drops whole days, counted back from each table's newest row in capture time, once an hour.",
            input: input(vec![], &[]),
            output: output(vec![
                ("tables", array("One entry per table, event tables first", table)),
                ("total_bytes", count("Sum of the tables' bytes")),
                ("database_bytes", count("The whole database on disk")),
                ("days_ahead", count("Days ahead of today whose partitions are made before traffic reaches them")),
            ]),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
        },
        |ctx, _t, _args| async move {
            let retention: Retention =
                serde_json::from_value(ctx.config["store"]["retention"].clone()).unwrap_or_default();
            let mut conn = db(&ctx).await?;
            let rows = table_storage(&mut conn).await.map_err(db_err)?;
            let database_bytes = netmonitor_store::partitions::database_bytes(&mut conn)
                .await
                .map_err(db_err)?;
            let total: i64 = rows.iter().map(|r| r.bytes).sum();
            let tables: Vec<_> = rows
                .iter()
                .map(|r| {
                    let days = retention.days(&r.table);
                    let partitioned = r.partitions > 0;
                    json!({
                        "table": r.table,
                        "bytes": r.bytes,
                        "rows_estimate": r.rows_estimate,
                        "partitions": r.partitions,
                        "oldest_partition": r.oldest_partition,
                        "newest_partition": r.newest_partition,
                        "default_rows_estimate": r.default_rows_estimate,
                        "retention_days": (partitioned && days > 0).then_some(days),
                    })
                })
                .collect();
            Ok(json!({
                "tables": tables,
                "total_bytes": total,
                "database_bytes": database_bytes,
                "days_ahead": retention.days_ahead,
            }))
        },
    )
}
