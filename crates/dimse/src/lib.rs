//! DIMSE networking for Lumen: the message layer on top of dicom-ul, an SCP for C-ECHO,
//! C-STORE, C-FIND, C-GET and C-MOVE (with C-CANCEL), and SCUs.
//!
//! - [`command`]: DIMSE command sets ([`Command`]) encoded with dicom-rs's object model.
//! - [`status`]: status codes and their classification.
//! - [`pdata`]: P-DATA-TF fragmentation and message reassembly.
//! - [`server`]: the SCP ([`Server`], [`serve`]) handing data sets to a [`StoreHandler`],
//!   with access control per service ([`AccessPolicy`]) and known peers ([`Peer`]), over
//!   TCP or, with [`Server::with_tls`], over TLS (PS3.15 Annex B).
//! - `qr`: C-FIND, C-GET and C-MOVE as SCP (the handler matches; this crate exchanges).
//! - [`scu`]: the SCU ([`StoreScu`]) for `lumen send`, tests and benchmarks.
//! - [`qr_scu`]: C-FIND, C-GET and C-MOVE as SCU on a [`StoreScu`] association.
//! - [`sop`]: the SOP classes and transfer syntaxes accepted by default.
//!
//! Only this crate knows DIMSE: the SCP hands over the data set bytes exactly as received,
//! and the binary decides how to store them.
//!
//! ```no_run
//! use lumen_dimse::{Server, ServerConfig, StoreHandler, StoreOutcome, StoreRequest, status};
//!
//! struct Archive;
//!
//! impl StoreHandler for Archive {
//!     async fn store(&self, req: StoreRequest) -> StoreOutcome {
//!         // Prepend file meta for req.transfer_syntax_uid and ingest req.dataset here.
//!         if req.dataset.is_empty() {
//!             return StoreOutcome::Failure {
//!                 status: status::CANNOT_UNDERSTAND,
//!                 comment: "empty data set".into(),
//!             };
//!         }
//!         StoreOutcome::Success
//!     }
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let config = ServerConfig { ae_title: "LUMEN".into(), ..ServerConfig::default() };
//! let server = Server::bind("0.0.0.0:11112", config, Archive).await?;
//! server.run_until(async { let _ = tokio::signal::ctrl_c().await; }).await;
//! # Ok(())
//! # }
//! ```

pub mod assoc;
pub mod command;
mod conn;
pub mod error;
pub mod pdata;
mod qr;
pub mod qr_scu;
pub mod scu;
pub mod server;
pub mod sop;
pub mod status;

pub use assoc::AcceptedContext;
pub use command::{Command, CommandField, Priority};
pub use error::DimseError;
pub use pdata::{DATA_SET_HEADROOM, DataSet};
pub use qr_scu::{QueryModel, ReceivedInstance, RetrieveResult};
pub use scu::{Part10Info, Proposal, Response, ScuConfig, StoreScu, proposals_for};
pub use server::{
    Access, AccessPolicy, AssociationSummary, Failure, FindOutcome, LoadedInstance, Peer,
    QueryRequest, RetrieveItem, Server, ServerConfig, StoreHandler, StoreOutcome, StoreRequest,
    serve,
};
/// The TLS crate whose acceptor [`Server::with_tls`] takes, re-exported so that callers
/// build the acceptor with the same version.
pub use tokio_rustls;
