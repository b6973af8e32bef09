//! The one registry every MCP list, call, validation and authorization decision derives from:
//! tools (schemas, annotations, required scope, handler), resources and URI templates, prompts,
//! and the enumerated values `completion/complete` offers. The crate registers nothing itself;
//! the composition root adds the real tools.

use crate::auth::{Identity, Scope};
use crate::schema;
use crate::uritemplate::UriTemplate;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Longest tool/prompt name accepted (MCP recommends 1–128 characters).
pub const MAX_NAME_LEN: usize = 128;

/// A boxed future that need not be `Send` (handlers run on the actix worker that received the
/// request).
pub type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// Where a request's notifications (progress, log messages) go: the POST's SSE stream, the
/// legacy SSE stream, or stdout.
pub type NotifySink = Arc<dyn Fn(Value) + Send + Sync>;

/// Severity levels of `notifications/message` (RFC 5424 order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// Debug.
    Debug,
    /// Info.
    Info,
    /// Notice.
    Notice,
    /// Warning.
    Warning,
    /// Error.
    Error,
    /// Critical.
    Critical,
    /// Alert.
    Alert,
    /// Emergency.
    Emergency,
}

impl LogLevel {
    /// Parses the protocol spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "notice" => LogLevel::Notice,
            "warning" => LogLevel::Warning,
            "error" => LogLevel::Error,
            "critical" => LogLevel::Critical,
            "alert" => LogLevel::Alert,
            "emergency" => LogLevel::Emergency,
            _ => return None,
        })
    }

    /// The protocol spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Notice => "notice",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
            LogLevel::Alert => "alert",
            LogLevel::Emergency => "emergency",
        }
    }
}

/// Cancellation flag of one in-flight request (set by `notifications/cancelled` or by the
/// client closing the request's stream).
#[derive(Default)]
pub struct CancelToken {
    flag: AtomicBool,
    notify: Notify,
}

impl CancelToken {
    /// A fresh, not cancelled token.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks the request cancelled and wakes waiters.
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Whether cancel() was called.
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Resolves once cancelled.
    pub async fn cancelled(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

struct CtxInner {
    identity: Identity,
    session_id: Option<String>,
    progress_token: Option<Value>,
    last_progress: Mutex<Option<f64>>,
    cancel: Arc<CancelToken>,
    log_level: Option<LogLevel>,
    sink: Option<NotifySink>,
    logger: String,
}

/// What a tool handler gets besides its arguments: the caller, progress reporting, the
/// cancellation flag and a log channel to the client.
#[derive(Clone)]
pub struct ToolCtx {
    inner: Arc<CtxInner>,
}

/// Parts of a [`ToolCtx`] the server fills in.
pub struct ToolCtxParts {
    /// The caller.
    pub identity: Identity,
    /// Session, when the transport has one.
    pub session_id: Option<String>,
    /// `_meta.progressToken` of the request.
    pub progress_token: Option<Value>,
    /// The request's cancellation flag.
    pub cancel: Arc<CancelToken>,
    /// Minimum level the client asked for (`None`: no log messages).
    pub log_level: Option<LogLevel>,
    /// Where notifications go (`None`: nowhere, e.g. a plain JSON response).
    pub sink: Option<NotifySink>,
    /// `logger` field of log messages (the tool name).
    pub logger: String,
}

impl ToolCtx {
    /// Builds a context (the server does this for every call).
    pub fn new(parts: ToolCtxParts) -> Self {
        ToolCtx {
            inner: Arc::new(CtxInner {
                identity: parts.identity,
                session_id: parts.session_id,
                progress_token: parts.progress_token,
                last_progress: Mutex::new(None),
                cancel: parts.cancel,
                log_level: parts.log_level,
                sink: parts.sink,
                logger: parts.logger,
            }),
        }
    }

    /// A context with no client attached, for calling handlers directly (tests, CLI).
    pub fn detached(identity: Identity) -> Self {
        Self::new(ToolCtxParts {
            identity,
            session_id: None,
            progress_token: None,
            cancel: Arc::new(CancelToken::new()),
            log_level: None,
            sink: None,
            logger: String::new(),
        })
    }

    /// The caller (token and scope).
    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    /// The MCP session, if any.
    pub fn session_id(&self) -> Option<&str> {
        self.inner.session_id.as_deref()
    }

    /// Whether the client asked for progress (sent a progressToken) and can receive it.
    pub fn wants_progress(&self) -> bool {
        self.inner.progress_token.is_some() && self.inner.sink.is_some()
    }

    /// Sends `notifications/progress` if the client asked for it; progress must increase, so
    /// values not above the last one are dropped.
    pub fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) {
        let (Some(token), Some(sink)) = (&self.inner.progress_token, &self.inner.sink) else {
            return;
        };
        if !progress.is_finite() {
            return;
        }
        if let Ok(mut last) = self.inner.last_progress.lock() {
            if last.map(|l| progress <= l).unwrap_or(false) {
                return;
            }
            *last = Some(progress);
        }
        let mut params = Map::new();
        params.insert("progressToken".into(), token.clone());
        params.insert("progress".into(), json!(progress));
        if let Some(t) = total.filter(|t| t.is_finite()) {
            params.insert("total".into(), json!(t));
        }
        if let Some(m) = message {
            params.insert("message".into(), json!(m));
        }
        sink(crate::jsonrpc::notification(
            "notifications/progress",
            Value::Object(params),
        ));
    }

    /// Whether the client cancelled this request; long handlers should poll it or await
    /// [`ToolCtx::cancelled`].
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancel.is_cancelled()
    }

    /// Resolves when the request is cancelled.
    pub async fn cancelled(&self) {
        self.inner.cancel.cancelled().await
    }

    /// Sends `notifications/message` when `level` is at or above what the client asked for.
    pub fn log(&self, level: LogLevel, data: Value) {
        let (Some(min), Some(sink)) = (self.inner.log_level, &self.inner.sink) else {
            return;
        };
        if level < min {
            return;
        }
        let mut params = Map::new();
        params.insert("level".into(), json!(level.as_str()));
        if !self.inner.logger.is_empty() {
            params.insert("logger".into(), json!(self.inner.logger));
        }
        params.insert("data".into(), data);
        sink(crate::jsonrpc::notification(
            "notifications/message",
            Value::Object(params),
        ));
    }
}

/// A tool failure, returned to the model as an `isError: true` result it can read and correct.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolError {
    /// An argument is wrong (names it).
    InvalidArgument {
        /// Argument name or path.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The thing asked about does not exist.
    NotFound(String),
    /// The backend (database, engine actor) is unavailable.
    Unavailable(String),
    /// Any other failure, described for the model.
    Failed(String),
    /// The request was cancelled.
    Cancelled,
    /// The caller's scope does not allow this particular request (audited as denied).
    Forbidden(String),
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToolError::InvalidArgument { field, message } => {
                write!(f, "invalid argument '{field}': {message}")
            }
            ToolError::NotFound(m) => write!(f, "not found: {m}"),
            ToolError::Unavailable(m) => write!(f, "temporarily unavailable: {m}"),
            ToolError::Failed(m) => write!(f, "{m}"),
            ToolError::Cancelled => write!(f, "cancelled"),
            ToolError::Forbidden(m) => write!(f, "Permission denied: {m}"),
        }
    }
}

impl std::error::Error for ToolError {}

/// A tool implementation: arguments (already validated against the input schema) in,
/// structured result (an object conforming to the output schema) out.
pub type ToolHandler = Arc<
    dyn Fn(ToolCtx, Map<String, Value>) -> LocalBoxFuture<Result<Value, ToolError>> + Send + Sync,
>;

/// Behaviour hints; always serialized explicitly because the protocol defaults (destructive,
/// open-world) are the pessimistic ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ToolAnnotations {
    /// Does not modify its environment.
    pub read_only: bool,
    /// May destroy or overwrite data (meaningful when not read-only).
    pub destructive: bool,
    /// Repeating the call with the same arguments has no further effect.
    pub idempotent: bool,
    /// Talks to the outside world (internet lookups).
    pub open_world: bool,
}

impl ToolAnnotations {
    /// A read-only query of the sensor's own data.
    pub const READ_ONLY: ToolAnnotations = ToolAnnotations {
        read_only: true,
        destructive: false,
        idempotent: true,
        open_world: false,
    };
}

/// One tool.
#[derive(Clone)]
pub struct ToolDef {
    /// Unique name (`get_sensor_status`).
    pub name: String,
    /// Display name.
    pub title: String,
    /// What it does, for the model.
    pub description: String,
    /// JSON Schema of the arguments (root `type: object`).
    pub input_schema: Value,
    /// JSON Schema of `structuredContent` (root `type: object`).
    pub output_schema: Value,
    /// Behaviour hints.
    pub annotations: ToolAnnotations,
    /// Lowest scope allowed to list and call it.
    pub scope: Scope,
    /// The implementation.
    pub handler: ToolHandler,
    /// How long a successful result may be served again for identical arguments: the refresh
    /// period of the snapshot the tool reads (`None`: every call runs the handler).
    pub reuse_for: Option<Duration>,
}

impl ToolDef {
    /// The `Tool` object of tools/list.
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "inputSchema": self.input_schema,
            "outputSchema": self.output_schema,
            "annotations": {
                "title": self.title,
                "readOnlyHint": self.annotations.read_only,
                "destructiveHint": self.annotations.destructive,
                "idempotentHint": self.annotations.idempotent,
                "openWorldHint": self.annotations.open_world,
            }
        })
    }
}

impl fmt::Debug for ToolDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolDef")
            .field("name", &self.name)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Contents of a resource read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResourceContents {
    /// Text (JSON documents are text with `application/json`).
    Text {
        /// The URI read.
        uri: String,
        /// MIME type.
        mime_type: Option<String>,
        /// The text.
        text: String,
    },
    /// Binary, base64-encoded.
    Blob {
        /// The URI read.
        uri: String,
        /// MIME type.
        mime_type: Option<String>,
        /// Base64 data.
        blob: String,
    },
}

impl ResourceContents {
    /// A JSON document as `application/json` text.
    pub fn json(uri: impl Into<String>, value: &Value) -> Self {
        ResourceContents::Text {
            uri: uri.into(),
            mime_type: Some("application/json".into()),
            text: value.to_string(),
        }
    }

    /// The protocol object.
    pub fn to_json(&self) -> Value {
        let (uri, mime, key, body) = match self {
            ResourceContents::Text {
                uri,
                mime_type,
                text,
            } => (uri, mime_type, "text", text),
            ResourceContents::Blob {
                uri,
                mime_type,
                blob,
            } => (uri, mime_type, "blob", blob),
        };
        let mut o = Map::new();
        o.insert("uri".into(), json!(uri));
        if let Some(m) = mime {
            o.insert("mimeType".into(), json!(m));
        }
        o.insert(key.into(), json!(body));
        Value::Object(o)
    }
}

/// A resource read request: the URI, the variables a template matched, and the caller.
#[derive(Clone, Debug)]
pub struct ResourceRequest {
    /// The URI asked for.
    pub uri: String,
    /// Template variables (percent-decoded); empty for static resources.
    pub vars: BTreeMap<String, String>,
    /// The caller.
    pub identity: Identity,
}

/// Reads a resource. `ToolError::NotFound` becomes the protocol's resource-not-found error.
pub type ResourceHandler = Arc<
    dyn Fn(ResourceRequest) -> LocalBoxFuture<Result<Vec<ResourceContents>, ToolError>>
        + Send
        + Sync,
>;

/// A resource at a fixed URI.
#[derive(Clone)]
pub struct ResourceDef {
    /// The URI (`network://hosts`).
    pub uri: String,
    /// Programmatic name.
    pub name: String,
    /// Display name.
    pub title: Option<String>,
    /// What it holds.
    pub description: Option<String>,
    /// MIME type of its contents.
    pub mime_type: Option<String>,
    /// Lowest scope allowed to list and read it.
    pub scope: Scope,
    /// Reader.
    pub handler: ResourceHandler,
}

/// A family of resources described by an RFC 6570 template (`network://hosts{?q,source,limit}`).
#[derive(Clone)]
pub struct ResourceTemplateDef {
    /// The template.
    pub uri_template: String,
    /// Programmatic name.
    pub name: String,
    /// Display name.
    pub title: Option<String>,
    /// What it holds.
    pub description: Option<String>,
    /// MIME type of its contents.
    pub mime_type: Option<String>,
    /// Lowest scope allowed to list and read it.
    pub scope: Scope,
    /// Enumerated values per variable, offered by completion/complete.
    pub completions: BTreeMap<String, Vec<String>>,
    /// Reader.
    pub handler: ResourceHandler,
}

/// Speaker of a prompt message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The user.
    User,
    /// The assistant.
    Assistant,
}

/// One message of a prompt.
#[derive(Clone, Debug, PartialEq)]
pub struct PromptMessage {
    /// Who speaks.
    pub role: Role,
    /// A content block (`{"type":"text","text":...}` or an embedded resource).
    pub content: Value,
}

impl PromptMessage {
    /// A user message with text.
    pub fn user_text(text: impl Into<String>) -> Self {
        PromptMessage {
            role: Role::User,
            content: json!({"type": "text", "text": text.into()}),
        }
    }

    /// The protocol object.
    pub fn to_json(&self) -> Value {
        let role = match self.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        json!({"role": role, "content": self.content})
    }
}

/// An argument of a prompt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromptArgument {
    /// Name.
    pub name: String,
    /// Display name.
    pub title: Option<String>,
    /// What to pass.
    pub description: Option<String>,
    /// Must be given.
    pub required: bool,
    /// Enumerated values offered by completion/complete (empty: free text).
    pub completions: Vec<String>,
}

/// Renders a prompt from its (string) arguments.
pub type PromptHandler = Arc<
    dyn Fn(
            BTreeMap<String, String>,
            Identity,
        ) -> LocalBoxFuture<Result<Vec<PromptMessage>, ToolError>>
        + Send
        + Sync,
>;

/// A prompt template.
#[derive(Clone)]
pub struct PromptDef {
    /// Unique name (`triage_ip`).
    pub name: String,
    /// Display name.
    pub title: Option<String>,
    /// What it is for.
    pub description: Option<String>,
    /// Arguments.
    pub arguments: Vec<PromptArgument>,
    /// Lowest scope allowed to list and get it.
    pub scope: Scope,
    /// Renderer.
    pub handler: PromptHandler,
}

/// A definition refused by the registry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// Two tools/prompts/resources with one name or URI.
    #[error("duplicate {kind} {name:?}")]
    Duplicate {
        /// tool, prompt, resource or template.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// A name outside `[A-Za-z0-9_.-]{1,128}`.
    #[error("invalid {kind} name {name:?}")]
    InvalidName {
        /// tool or prompt.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// A schema the validator cannot honour, or whose root is not an object.
    #[error("tool {tool:?}: {reason}")]
    InvalidSchema {
        /// The tool.
        tool: String,
        /// Why.
        reason: String,
    },
    /// An unparsable URI template.
    #[error("resource template {template:?}: {reason}")]
    InvalidTemplate {
        /// The template.
        template: String,
        /// Why.
        reason: String,
    },
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

fn check_schema(tool: &str, which: &str, s: &Value) -> Result<(), RegistryError> {
    if s.get("type").and_then(Value::as_str) != Some("object") {
        return Err(RegistryError::InvalidSchema {
            tool: tool.to_string(),
            reason: format!("{which} must have `type: object` at the root"),
        });
    }
    let bad = schema::unsupported_keywords(s);
    if !bad.is_empty() {
        return Err(RegistryError::InvalidSchema {
            tool: tool.to_string(),
            reason: format!("{which} uses unsupported keywords: {}", bad.join(", ")),
        });
    }
    Ok(())
}

/// Everything the server offers.
#[derive(Clone, Default)]
pub struct Registry {
    tools: Vec<ToolDef>,
    /// Each tool's metric handles, by the tool's index.
    tool_meters: Vec<crate::obs::ToolMeters>,
    resources: Vec<ResourceDef>,
    templates: Vec<(ResourceTemplateDef, UriTemplate)>,
    prompts: Vec<PromptDef>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a tool after checking its name and schemas.
    pub fn add_tool(&mut self, tool: ToolDef) -> Result<&mut Self, RegistryError> {
        if !valid_name(&tool.name) {
            return Err(RegistryError::InvalidName {
                kind: "tool",
                name: tool.name,
            });
        }
        if self.tools.iter().any(|t| t.name == tool.name) {
            return Err(RegistryError::Duplicate {
                kind: "tool",
                name: tool.name,
            });
        }
        check_schema(&tool.name, "inputSchema", &tool.input_schema)?;
        check_schema(&tool.name, "outputSchema", &tool.output_schema)?;
        self.tools.push(tool);
        self.tool_meters.push(Default::default());
        Ok(self)
    }

    /// Adds a fixed-URI resource.
    pub fn add_resource(&mut self, res: ResourceDef) -> Result<&mut Self, RegistryError> {
        if self.resources.iter().any(|r| r.uri == res.uri) {
            return Err(RegistryError::Duplicate {
                kind: "resource",
                name: res.uri,
            });
        }
        self.resources.push(res);
        Ok(self)
    }

    /// Adds a resource template.
    pub fn add_template(&mut self, tpl: ResourceTemplateDef) -> Result<&mut Self, RegistryError> {
        if self
            .templates
            .iter()
            .any(|(t, _)| t.uri_template == tpl.uri_template)
        {
            return Err(RegistryError::Duplicate {
                kind: "template",
                name: tpl.uri_template,
            });
        }
        let parsed = UriTemplate::parse(&tpl.uri_template).map_err(|reason| {
            RegistryError::InvalidTemplate {
                template: tpl.uri_template.clone(),
                reason,
            }
        })?;
        self.templates.push((tpl, parsed));
        Ok(self)
    }

    /// Adds a prompt.
    pub fn add_prompt(&mut self, prompt: PromptDef) -> Result<&mut Self, RegistryError> {
        if !valid_name(&prompt.name) {
            return Err(RegistryError::InvalidName {
                kind: "prompt",
                name: prompt.name,
            });
        }
        if self.prompts.iter().any(|p| p.name == prompt.name) {
            return Err(RegistryError::Duplicate {
                kind: "prompt",
                name: prompt.name,
            });
        }
        self.prompts.push(prompt);
        Ok(self)
    }

    /// All tools, in registration order.
    pub fn tools(&self) -> &[ToolDef] {
        &self.tools
    }

    /// A tool by name.
    pub fn tool(&self, name: &str) -> Option<&ToolDef> {
        self.tools.iter().find(|t| t.name == name)
    }

    /// A tool by name with its metric handles.
    pub(crate) fn tool_with_meters(
        &self,
        name: &str,
    ) -> Option<(&ToolDef, &crate::obs::ToolMeters)> {
        let i = self.tools.iter().position(|t| t.name == name)?;
        Some((&self.tools[i], &self.tool_meters[i]))
    }

    /// All fixed resources.
    pub fn resources(&self) -> &[ResourceDef] {
        &self.resources
    }

    /// All templates.
    pub fn templates(&self) -> impl Iterator<Item = &ResourceTemplateDef> {
        self.templates.iter().map(|(t, _)| t)
    }

    /// All prompts.
    pub fn prompts(&self) -> &[PromptDef] {
        &self.prompts
    }

    /// A prompt by name.
    pub fn prompt(&self, name: &str) -> Option<&PromptDef> {
        self.prompts.iter().find(|p| p.name == name)
    }

    /// A template by its template string.
    pub fn template(&self, uri_template: &str) -> Option<&ResourceTemplateDef> {
        self.templates().find(|t| t.uri_template == uri_template)
    }

    /// Finds what serves `uri`: a fixed resource first, then the first matching template.
    pub fn resolve(&self, uri: &str) -> Option<ResolvedResource<'_>> {
        if let Some(r) = self.resources.iter().find(|r| r.uri == uri) {
            return Some(ResolvedResource {
                scope: r.scope,
                handler: &r.handler,
                vars: BTreeMap::new(),
            });
        }
        self.templates.iter().find_map(|(t, parsed)| {
            parsed.matches(uri).map(|vars| ResolvedResource {
                scope: t.scope,
                handler: &t.handler,
                vars,
            })
        })
    }
}

/// The reader for a URI and the template variables it matched.
pub struct ResolvedResource<'a> {
    /// Required scope.
    pub scope: Scope,
    /// Reader.
    pub handler: &'a ResourceHandler,
    /// Matched variables.
    pub vars: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str, input: Value) -> ToolDef {
        ToolDef {
            name: name.into(),
            title: name.into(),
            description: "d".into(),
            input_schema: input,
            output_schema: json!({"type": "object"}),
            annotations: ToolAnnotations::READ_ONLY,
            scope: Scope::ReadOnly,
            handler: Arc::new(|_, _| Box::pin(async { Ok(json!({})) })),
            reuse_for: None,
        }
    }

    #[test]
    fn rejects_bad_names_duplicates_and_schemas() {
        let mut r = Registry::new();
        assert!(r
            .add_tool(tool("ok_tool", json!({"type": "object"})))
            .is_ok());
        assert!(matches!(
            r.add_tool(tool("ok_tool", json!({"type": "object"}))),
            Err(RegistryError::Duplicate { .. })
        ));
        assert!(matches!(
            r.add_tool(tool("bad name", json!({"type": "object"}))),
            Err(RegistryError::InvalidName { .. })
        ));
        assert!(matches!(
            r.add_tool(tool("t2", json!({"type": "string"}))),
            Err(RegistryError::InvalidSchema { .. })
        ));
        assert!(matches!(
            r.add_tool(tool("t3", json!({"type": "object", "anyOf": []}))),
            Err(RegistryError::InvalidSchema { .. })
        ));
    }

    #[test]
    fn annotations_are_explicit() {
        let v = tool("x", json!({"type": "object"})).to_json();
        let a = &v["annotations"];
        assert_eq!(a["readOnlyHint"], json!(true));
        assert_eq!(a["destructiveHint"], json!(false));
        assert_eq!(a["idempotentHint"], json!(true));
        assert_eq!(a["openWorldHint"], json!(false));
    }

    #[test]
    fn progress_is_monotonic_and_needs_a_token() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let sink: NotifySink = Arc::new(move |v| {
            if let Ok(mut g) = s2.lock() {
                g.push(v)
            }
        });
        let ctx = ToolCtx::new(ToolCtxParts {
            identity: Identity::anonymous(Scope::Admin),
            session_id: None,
            progress_token: Some(json!("p1")),
            cancel: Arc::new(CancelToken::new()),
            log_level: Some(LogLevel::Warning),
            sink: Some(sink),
            logger: "t".into(),
        });
        ctx.progress(1.0, Some(3.0), None);
        ctx.progress(1.0, Some(3.0), None);
        ctx.progress(2.0, None, Some("half"));
        ctx.log(LogLevel::Info, json!("dropped"));
        ctx.log(LogLevel::Error, json!("kept"));
        let got = seen.lock().map(|g| g.clone()).unwrap_or_default();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0]["params"]["progressToken"], json!("p1"));
        assert_eq!(got[1]["params"]["progress"], json!(2.0));
        assert_eq!(got[2]["params"]["level"], json!("error"));
        let detached = ToolCtx::detached(Identity::anonymous(Scope::ReadOnly));
        detached.progress(5.0, None, None);
        assert!(!detached.wants_progress());
    }

    #[test]
    fn cancel_token_wakes_waiters() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        let Ok(rt) = rt else { return };
        let tok = Arc::new(CancelToken::new());
        let t2 = tok.clone();
        rt.block_on(async move {
            let waiter = tokio::spawn(async move { t2.cancelled().await });
            tokio::task::yield_now().await;
            tok.cancel();
            let r = tokio::time::timeout(std::time::Duration::from_secs(2), waiter).await;
            assert!(r.is_ok());
        });
    }
}
