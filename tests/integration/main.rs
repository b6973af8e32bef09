//! End-to-end tests: the real binary, a real PostgreSQL (private clusters in temp directories),
//! real HTTP. One target, a module per area, shared fixtures in `util`.

mod behaviour;
mod behaviour_replay;
mod devices;
mod eve_schema;
mod intel;
mod live;
mod live_config;
mod mcp;
mod netns;
mod oracles;
mod resilience;
mod risk;
mod service;
mod soar;
mod supervision;
mod util;
