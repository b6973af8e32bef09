//! The stdio transport for clients that launch the binary: newline-delimited JSON-RPC on
//! stdin/stdout, one session per process (initialize-based versions, batches for 2025-03-26),
//! 2026-07-28 requests served statelessly from their `_meta` envelope.

use crate::auth::Identity;
use crate::jsonrpc::{self, Message, Reply, RpcError};
use crate::protocol::BATCH_VERSION;
use crate::server::{ClientMeta, McpServer};
use crate::session::{Session, TransportKind};
use actix_web::web::Bytes;
use serde_json::Value;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

impl McpServer {
    /// Serves MCP over a byte stream pair (stdin/stdout) until the input ends. Requests run
    /// concurrently (so `notifications/cancelled` can reach them); replies and notifications
    /// are written one JSON object per line. `identity` is who the parent process is trusted
    /// as (stdio has no bearer header). Runs on a `LocalSet` of its own.
    pub async fn serve_stdio<R, W>(
        self: Arc<Self>,
        reader: R,
        writer: W,
        identity: Identity,
    ) -> std::io::Result<()>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin + 'static,
    {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(self.stdio_loop(reader, writer, identity))
            .await
    }

    async fn stdio_loop<R, W>(
        self: Arc<Self>,
        reader: R,
        mut writer: W,
        identity: Identity,
    ) -> std::io::Result<()>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin + 'static,
    {
        let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
        let writer_task = tokio::task::spawn_local(async move {
            while let Some(b) = rx.recv().await {
                writer.write_all(&b).await?;
                writer.flush().await?;
            }
            Ok::<(), std::io::Error>(())
        });
        let session = Arc::new(
            Session::new(
                TransportKind::Stdio,
                crate::protocol::LATEST_HANDSHAKE,
                identity.token_id(),
                1,
            )
            .with_replay_bytes(self.config.replay_bytes_per_session),
        );
        let out_tx = tx.clone();
        session.set_outbound(Arc::new(move |m: &[u8]| {
            let mut line = Vec::with_capacity(m.len() + 1);
            line.extend_from_slice(m);
            line.push(b'\n');
            out_tx.send(Bytes::from(line)).is_ok()
        }));
        // stdio sessions are only reachable through this loop; capacity errors are not fatal
        let registered = self.insert_session(session.clone()).is_ok();
        let meta = ClientMeta {
            client_ip: None,
            client_addr: Some("stdio".into()),
            user_agent: None,
        };
        let limit = self.config.max_body_bytes;
        let mut input = BufReader::new(reader);
        let mut line = Vec::new();
        let mut tasks: Vec<tokio::task::JoinHandle<()>> = Vec::new();
        loop {
            tasks.retain(|h| !h.is_finished());
            line.clear();
            let n = (&mut input)
                .take(limit as u64 + 1)
                .read_until(b'\n', &mut line)
                .await?;
            if n == 0 {
                break;
            }
            if line.len() > limit && line.last() != Some(&b'\n') {
                // discard the rest of the oversized line
                let mut sink = Vec::new();
                loop {
                    sink.clear();
                    let m = (&mut input)
                        .take(64 * 1024)
                        .read_until(b'\n', &mut sink)
                        .await?;
                    if m == 0 || sink.last() == Some(&b'\n') {
                        break;
                    }
                }
                let err = RpcError::new(jsonrpc::INVALID_REQUEST, "message too large");
                session.send_outbound(&jsonrpc::error_response(None, &err));
                continue;
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            let value: Value = match serde_json::from_str(text) {
                Ok(v) => v,
                Err(e) => {
                    let err = RpcError::new(jsonrpc::PARSE_ERROR, format!("Parse error: {e}"));
                    session.send_outbound(&jsonrpc::error_response(None, &err));
                    continue;
                }
            };
            match value {
                Value::Array(items) => {
                    if items.is_empty() || session.version() != BATCH_VERSION {
                        let err = RpcError::new(
                            jsonrpc::INVALID_REQUEST,
                            format!("Invalid Request: batches need protocol version {BATCH_VERSION} and at least one message"),
                        );
                        session.send_outbound(&jsonrpc::error_response(None, &err));
                        continue;
                    }
                    let server = self.clone();
                    let s = session.clone();
                    let who = identity.clone();
                    let m = meta.clone();
                    tasks.push(tokio::task::spawn_local(async move {
                        let mut out = Vec::new();
                        for item in items {
                            match jsonrpc::classify(item) {
                                Err(inv) => out.push(Reply::error(inv.id.as_ref(), &inv.error)),
                                Ok(Message::Response) => {}
                                Ok(Message::Notification { method, params }) => {
                                    server.handle_notification(Some(&s), &method, params.as_ref())
                                }
                                Ok(Message::Request { id, method, params }) => {
                                    if let Some(r) = server
                                        .session_request(
                                            &s,
                                            who.clone(),
                                            m.clone(),
                                            &id,
                                            &method,
                                            params,
                                        )
                                        .await
                                    {
                                        out.push(r);
                                    }
                                }
                            }
                        }
                        if !out.is_empty() {
                            s.send_outbound_json(&jsonrpc::encode_batch(&out));
                        }
                    }));
                }
                single => match jsonrpc::classify(single) {
                    Err(inv) => {
                        session
                            .send_outbound(&jsonrpc::error_response(inv.id.as_ref(), &inv.error));
                    }
                    Ok(Message::Response) => {}
                    Ok(Message::Notification { method, params }) => {
                        self.handle_notification(Some(&session), &method, params.as_ref())
                    }
                    Ok(Message::Request { id, method, params }) if method == "initialize" => {
                        // answered before the next line is read: later lines depend on the version
                        if let Some(r) = self
                            .session_request(
                                &session,
                                identity.clone(),
                                meta.clone(),
                                &id,
                                &method,
                                params,
                            )
                            .await
                        {
                            session.send_outbound_json(&r.json);
                        }
                    }
                    Ok(Message::Request { id, method, params }) => {
                        let server = self.clone();
                        let s = session.clone();
                        let who = identity.clone();
                        let m = meta.clone();
                        tasks.push(tokio::task::spawn_local(async move {
                            if let Some(r) = server
                                .session_request(&s, who, m, &id, &method, params)
                                .await
                            {
                                s.send_outbound_json(&r.json);
                            }
                        }));
                    }
                },
            }
        }
        // input closed: finish the requests already read, then let the writer drain
        for t in tasks {
            let _ = t.await;
        }
        if registered {
            self.remove_session(&session.id);
        } else {
            session.close();
        }
        drop(tx);
        drop(session);
        match writer_task.await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e.to_string())),
        }
    }
}
