//! The share worker's HTTP client (`lumen_app::share::NodeClient`): signed requests to
//! consortium members, with ureq.

use std::time::Duration;

use lumen_app::share::{NodeClient, NodeRequest};

/// A client with a 5-second connect limit and a 120-second limit per request (a batch
/// of instances).
pub struct HttpNodeClient {
    agent: ureq::Agent,
}

impl HttpNodeClient {
    /// A new client.
    pub fn new() -> Self {
        HttpNodeClient {
            agent: ureq::Agent::config_builder()
                .timeout_connect(Some(Duration::from_secs(5)))
                .timeout_global(Some(Duration::from_secs(120)))
                .http_status_as_error(false)
                .build()
                .into(),
        }
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
