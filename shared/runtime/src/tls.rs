//! Optional TLS / mTLS between services (rustls through tonic). Paths point at PEM files.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

#[derive(Debug, thiserror::Error)]
#[error("cannot read TLS file `{field}` at {path}: {source}")]
pub struct TlsError {
    pub field: &'static str,
    pub path: PathBuf,
    pub source: std::io::Error,
}

fn read(field: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError {
        field,
        path: path.to_path_buf(),
        source,
    })
}

/// Server side: its own certificate, and with `client_ca` set, mTLS (clients must present
/// a certificate signed by that CA).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

impl ServerTlsFiles {
    pub fn load(&self) -> Result<ServerTlsConfig, TlsError> {
        let identity = Identity::from_pem(read("tls.cert", &self.cert)?, read("tls.key", &self.key)?);
        let mut config = ServerTlsConfig::new().identity(identity);
        if let Some(ca) = &self.client_ca {
            config = config.client_ca_root(Certificate::from_pem(read("tls.client_ca", ca)?));
        }
        Ok(config)
    }
}

/// Client side: the CA that signs the servers, the expected server name, and for mTLS the
/// client's own certificate and key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientTlsFiles {
    pub ca: PathBuf,
    pub domain: Option<String>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl ClientTlsFiles {
    pub fn load(&self) -> Result<ClientTlsConfig, TlsError> {
        let mut config =
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read("tls.ca", &self.ca)?));
        if let Some(domain) = &self.domain {
            config = config.domain_name(domain.clone());
        }
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            config = config.identity(Identity::from_pem(read("tls.cert", cert)?, read("tls.key", key)?));
        }
        Ok(config)
    }
}
