//! DIMSE networking for Lumen: the message layer on top of dicom-ul, a C-ECHO/C-STORE SCP
//! and a C-ECHO/C-STORE SCU.
//!
//! - [`command`]: DIMSE command sets ([`Command`]) encoded with dicom-rs's object model.
//! - [`status`]: status codes and their classification.
//! - [`pdata`]: P-DATA-TF fragmentation and message reassembly.
//! - [`server`]: the SCP ([`Server`], [`serve`]) handing data sets to a [`StoreHandler`].
//! - [`scu`]: the SCU ([`StoreScu`]) for `lumen send`, tests and benchmarks.
//! - [`sop`]: the SOP classes and transfer syntaxes accepted by default.
//!
//! Only this crate knows DIMSE: the SCP hands over the data set bytes exactly as received,
//! and the binary decides how to store them.

pub mod assoc;
pub mod command;
mod conn;
pub mod error;
pub mod pdata;
pub mod scu;
pub mod server;
pub mod sop;
pub mod status;

pub use assoc::AcceptedContext;
pub use command::{Command, CommandField, Priority};
pub use error::DimseError;
pub use scu::{Part10Info, Proposal, Response, ScuConfig, StoreScu, proposals_for};
pub use server::{
    AssociationSummary, Server, ServerConfig, StoreHandler, StoreOutcome, StoreRequest, serve,
};
