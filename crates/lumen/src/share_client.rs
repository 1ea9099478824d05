//! The share worker's HTTP client (`lumen_app::share::NodeClient`): signed requests to
//! consortium members, with ureq.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use lumen_app::share::{NodeClient, NodeRequest};

/// A client with a 5-second connect limit and a 120-second limit per request (a batch
/// of instances).
pub struct HttpNodeClient {
    agent: ureq::Agent,
}

impl HttpNodeClient {
    /// A new client; with `ca` (PEM, one or more certificates), members' HTTPS
    /// certificates must chain to those CAs (`[consortium] ca`), else to the public roots.
    pub fn new(ca: Option<&Path>) -> anyhow::Result<Self> {
        let mut config = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_global(Some(Duration::from_secs(120)))
            .http_status_as_error(false);
        if let Some(ca) = ca {
            let pem = std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?;
            let certs = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("{} is not PEM", ca.display()))?;
            anyhow::ensure!(!certs.is_empty(), "{} holds no certificate", ca.display());
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                    .build(),
            );
        }
        Ok(HttpNodeClient {
            agent: config.build().into(),
        })
    }
}

impl NodeClient for HttpNodeClient {
    fn send(&self, req: &NodeRequest) -> Result<(u16, Vec<u8>), String> {
        let url = &req.url;
        let mut r = if req.method == "GET" {
            let mut b = self.agent.get(url);
            for (k, v) in &req.headers {
                b = b.header(k, v);
            }
            b.call()
        } else {
            let mut b = self.agent.post(url);
            for (k, v) in &req.headers {
                b = b.header(k, v);
            }
            b.send(&req.body[..])
        }
        .map_err(|e| format!("{url}: {e}"))?;
        let status = r.status().as_u16();
        let body = r
            .body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_vec()
            .map_err(|e| format!("{url}: {e}"))?;
        Ok((status, body))
    }
}
