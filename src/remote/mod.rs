//! Real devices over the network: `edgecert agent` serves a device's runtime over a versioned
//! TCP protocol (`docs/protocol.md`), and the `remote` backend certifies a model on it, with
//! the device's own outputs and clock.

mod agent;
mod client;
#[cfg(test)]
mod fuzz_tests;
mod journal;
pub mod protocol;

pub use agent::{Agent, AgentConfig};
pub use client::{RemoteEngine, RemoteMeter, RemoteTarget};
pub use journal::{input_digest, same_outputs, DeviceJournal, Journal};
