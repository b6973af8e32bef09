//! Integration tests of the MCP server over real sockets on 127.0.0.1: one target, a module
//! per area, shared fixtures in `util`.

mod abuse;
mod auth;
mod fuzz;
mod interop;
mod legacy;
mod load;
mod modern;
mod rmcp_client;
mod stdio;
mod streams;
mod transport;
mod util;
