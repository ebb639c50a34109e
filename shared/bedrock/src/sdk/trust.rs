//! The root certificates the SDK clients' HTTPS connections trust.
//!
//! By default the Amazon Trust Services roots embedded in the binary: AWS endpoints chain to
//! them, and a cold start then reads no certificate files (the system store is ~150 files,
//! most of a function's init). `AWS_CA_TRUST=system` (or `SSL_CERT_FILE` / `SSL_CERT_DIR`
//! set) trusts the system store instead, for a TLS-inspecting proxy with its own CA;
//! `AWS_CA_BUNDLE` (the AWS CLI's and SDKs' setting) trusts exactly the PEM bundle it names.

use std::path::PathBuf;

use ::settings::ConfigError;
use aws_smithy_http_client::tls::TrustStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Amazon Root CA 1-4 and Starfield Services Root Certificate Authority - G2 (see
/// `certs/README.md` for their source).
pub const AMAZON_ROOTS_PEM: &[u8] = include_bytes!("../../certs/amazon-trust-services.pem");

/// Chooses the trust store: `embedded` (default) or `system`.
pub const TRUST_VAR: &str = "AWS_CA_TRUST";
/// A PEM bundle to trust instead of any other store.
pub const BUNDLE_VAR: &str = "AWS_CA_BUNDLE";
/// Locations of the system store (OpenSSL's convention, which the system store follows);
/// setting either, without `AWS_CA_TRUST`, selects the system store.
const SYSTEM_LOCATION_VARS: [&str; 2] = ["SSL_CERT_FILE", "SSL_CERT_DIR"];

/// Which root certificates the HTTPS client trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The Amazon Trust Services roots compiled into the binary.
    Embedded,
    /// The platform's store (read once per process, honouring `SSL_CERT_FILE` and
    /// `SSL_CERT_DIR`).
    System,
    /// Exactly the certificates of this PEM file.
    Bundle(PathBuf),
}

impl Trust {
    /// The choice the environment makes (`var` looks a variable up; empty counts as unset):
    /// `AWS_CA_BUNDLE` first, then `AWS_CA_TRUST`, then the system store when
    /// `SSL_CERT_FILE` or `SSL_CERT_DIR` names one, else the embedded roots.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| var(name).filter(|value| !value.is_empty());
        if let Some(path) = var(BUNDLE_VAR) {
            return Ok(Self::Bundle(path.into()));
        }
        match var(TRUST_VAR).as_deref() {
            Some("embedded") => Ok(Self::Embedded),
            Some("system") => Ok(Self::System),
            Some(other) => Err(ConfigError::new(
                TRUST_VAR,
                format!("{other:?} is neither \"embedded\" nor \"system\""),
            )),
            None if SYSTEM_LOCATION_VARS.iter().any(|name| var(name).is_some()) => Ok(Self::System),
            None => Ok(Self::Embedded),
        }
    }

    /// The choice of the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// The SDK trust store for this choice. A bundle is read and checked here, so that a
    /// bad one fails the cold start with a message naming `AWS_CA_BUNDLE` (the TLS layer
    /// would panic on the first connection).
    pub fn store(&self) -> Result<TrustStore, ConfigError> {
        Ok(match self {
            Self::Embedded => embedded(),
            Self::System => TrustStore::default(),
            Self::Bundle(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    ConfigError::new(BUNDLE_VAR, format!("cannot read {}: {e}", path.display()))
                })?;
                let count = checked_roots(&pem).map_err(|e| {
                    ConfigError::new(BUNDLE_VAR, format!("{}: {e}", path.display()))
                })?;
                tracing::debug!(path = %path.display(), count, "trusting a CA bundle");
                TrustStore::empty().with_pem_certificate(pem)
            }
        })
    }
}

/// The embedded Amazon Trust Services roots as an SDK trust store.
pub fn embedded() -> TrustStore {
    TrustStore::empty().with_pem_certificate(AMAZON_ROOTS_PEM)
}

/// The number of certificates in `pem`, each usable as a trust anchor; an error when one
/// is not, or when there are none.
pub fn checked_roots(pem: &[u8]) -> Result<usize, String> {
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("not a PEM certificate list: {e}"))?;
        webpki::anchor_from_trusted_cert(&cert)
            .map_err(|e| format!("certificate {} is not usable as a root: {e}", count + 1))?;
        count += 1;
    }
    if count == 0 {
        return Err("holds no certificate".into());
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn choose(vars: &[(&str, &str)]) -> Result<Trust, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Trust::from_vars(|name| vars.get(name).cloned())
    }

    #[test]
    fn embedded_roots_are_the_five_amazon_trust_services_roots() {
        let subjects: Vec<String> = CertificateDer::pem_slice_iter(AMAZON_ROOTS_PEM)
            .map(|cert| {
                let cert = cert.expect("PEM");
                let anchor = webpki::anchor_from_trusted_cert(&cert).expect("a trust anchor");
                String::from_utf8_lossy(&anchor.subject).into_owned()
            })
            .collect();
        let expected = [
            "Amazon Root CA 1",
            "Amazon Root CA 2",
            "Amazon Root CA 3",
            "Amazon Root CA 4",
            "Starfield Services Root Certificate Authority - G2",
        ];
        assert_eq!(subjects.len(), expected.len(), "{subjects:?}");
        for (subject, name) in subjects.iter().zip(expected) {
            // The subject's common name, as its DER holds it, at the end of the name.
            assert!(subject.ends_with(name), "{subject:?} is not {name}");
        }
        assert_eq!(checked_roots(AMAZON_ROOTS_PEM), Ok(5));
    }

    #[test]
    fn default_is_the_embedded_roots() {
        assert_eq!(choose(&[]), Ok(Trust::Embedded));
        assert_eq!(choose(&[(TRUST_VAR, "")]), Ok(Trust::Embedded));
        assert_eq!(choose(&[("SSL_CERT_DIR", "")]), Ok(Trust::Embedded));
    }

    #[test]
    fn system_store_when_asked_or_when_its_location_is_set() {
        assert_eq!(choose(&[(TRUST_VAR, "system")]), Ok(Trust::System));
        assert_eq!(choose(&[("SSL_CERT_FILE", "/x.pem")]), Ok(Trust::System));
        assert_eq!(choose(&[("SSL_CERT_DIR", "/certs")]), Ok(Trust::System));
        // An explicit choice wins over the location variables.
        assert_eq!(
            choose(&[(TRUST_VAR, "embedded"), ("SSL_CERT_FILE", "/x.pem")]),
            Ok(Trust::Embedded)
        );
    }

    #[test]
    fn a_bundle_wins_and_is_checked() {
        assert_eq!(
            choose(&[(BUNDLE_VAR, "/ca.pem"), (TRUST_VAR, "system")]),
            Ok(Trust::Bundle("/ca.pem".into()))
        );
        let missing = Trust::Bundle("/nonexistent/ca.pem".into())
            .store()
            .unwrap_err();
        assert_eq!(missing.variable, BUNDLE_VAR);
        let dir = std::env::temp_dir().join(format!("trust-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no certificates here\n").unwrap();
        let err = Trust::Bundle(empty).store().unwrap_err();
        assert!(err.message.contains("no certificate"), "{err}");
        let good = dir.join("good.pem");
        std::fs::write(&good, AMAZON_ROOTS_PEM).unwrap();
        assert!(Trust::Bundle(good).store().is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unknown_choice_names_the_variable() {
        let err = choose(&[(TRUST_VAR, "mozilla")]).unwrap_err();
        assert_eq!(err.variable, TRUST_VAR);
    }

    #[test]
    fn a_broken_certificate_is_refused() {
        let broken = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(checked_roots(broken).is_err());
    }
}
