//! The device inventory: devices keyed by MAC where DHCP names one, else by address, with the
//! MAC's vendor (IEEE registries), host names (DHCP, DNS, mDNS, reverse lookups), the DHCP
//! fingerprint and vendor class, TLS client fingerprints, services answered, protocols,
//! traffic and first/last seen. Fed with events from the bus; kept in PostgreSQL by the
//! device actor so it survives restarts.

pub mod actor;
pub mod book;
pub mod config;
pub mod device;
pub mod learn;
pub mod oui;
mod short;
pub mod templates;

pub use actor::{DeviceActor, DevicesLoaded, QueryDevices, UpdateDevices};
pub use book::{Changes, DeviceBook, DeviceQuery};
pub use config::DevicesConfig;
pub use device::Device;
pub use oui::OuiTable;
pub use templates::{Fit, Template};

#[cfg(test)]
mod tests;
