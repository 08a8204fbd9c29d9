//! The certificates a deployment needs: a CA, the collector's serving certificate, and the
//! client certificate kube-apiserver presents to the audit webhook.
//!
//! # Example
//!
//! ```
//! use whakapapa_collector::deploy::pki::Pki;
//!
//! let pki = Pki::generate(&["whakapapa-collector.whakapapa.svc".to_owned()]).unwrap();
//! assert!(pki.ca_cert.starts_with("-----BEGIN CERTIFICATE-----"));
//! ```
//!
//! Everything is PEM text. [`Pki::load_or_generate`] keeps the files in a directory so that
//! running `manifests` twice prints the same CA bundle and the cluster keeps trusting it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, date_time_ymd,
};

/// Common name of the client certificate kube-apiserver presents to the audit webhook.
pub const API_SERVER_CLIENT_CN: &str = "kube-apiserver-audit-webhook";

/// File names inside a PKI directory, as [`Pki::load`] and [`Pki::write`] use them.
pub mod files {
    /// The CA certificate.
    pub const CA_CERT: &str = "ca.crt";
    /// The CA's private key (kept so more certificates can be issued later).
    pub const CA_KEY: &str = "ca.key";
    /// The collector's serving certificate.
    pub const SERVER_CERT: &str = "tls.crt";
    /// The collector's serving key.
    pub const SERVER_KEY: &str = "tls.key";
    /// kube-apiserver's client certificate for the audit webhook.
    pub const CLIENT_CERT: &str = "client.crt";
    /// kube-apiserver's client key for the audit webhook.
    pub const CLIENT_KEY: &str = "client.key";
    /// The read-only bearer token of the query API.
    pub const QUERY_TOKEN: &str = "query-token";
}

/// Errors generating, reading or writing PKI material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A subject alternative name is neither an IP address nor a valid DNS name.
    #[error("cannot issue a certificate")]
    Issue(#[from] rcgen::Error),
    /// A file of the PKI directory could not be read or written.
    #[error("pki file {path}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// The operating system's random generator failed.
    #[error("cannot read random bytes for the query token")]
    Random,
    /// Some but not all files of a PKI directory exist.
    #[error(
        "pki directory {dir} is incomplete: {missing} is missing (remove the directory to start over)"
    )]
    Incomplete {
        /// The directory.
        dir: PathBuf,
        /// The first missing file.
        missing: &'static str,
    },
}

/// PEM-encoded certificates and keys, plus the query API's token.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pki {
    /// The CA certificate; the bundle for the webhook kubeconfig and the admission webhook.
    pub ca_cert: String,
    /// The CA key.
    pub ca_key: String,
    /// The collector's serving certificate, issued by the CA.
    pub server_cert: String,
    /// The collector's serving key.
    pub server_key: String,
    /// kube-apiserver's client certificate, issued by the CA.
    pub client_cert: String,
    /// kube-apiserver's client key.
    pub client_key: String,
    /// The read-only query API token.
    pub query_token: String,
}

// Keys and the token never appear in debug output (logs).
impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("ca_cert", &self.ca_cert.len())
            .field("server_cert", &self.server_cert.len())
            .field("client_cert", &self.client_cert.len())
            .finish_non_exhaustive()
    }
}

impl Pki {
    /// A fresh CA and certificates; the serving certificate is valid for `server_names` (DNS
    /// names or IP addresses).
    pub fn generate(server_names: &[String]) -> Result<Self, Error> {
        let year = i32::from(jiff::Zoned::now().year());
        let validity = |params: &mut CertificateParams, years: i32| {
            params.not_before = date_time_ymd(year - 1, 1, 1);
            params.not_after = date_time_ymd(year + years, 1, 1);
        };

        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.distinguished_name = name("whakapapa-collector CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        validity(&mut ca, 10);
        let ca_key = KeyPair::generate()?;
        let ca_key_pem = ca_key.serialize_pem();
        let ca = CertifiedIssuer::self_signed(ca, ca_key)?;

        let mut server = CertificateParams::new(server_names.to_vec())?;
        server.distinguished_name = name(server_names.first().map_or("whakapapa-collector", |n| n));
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        validity(&mut server, 2);
        let server_key = KeyPair::generate()?;
        let server_cert = server.signed_by(&server_key, &ca)?;

        let mut client = CertificateParams::new(Vec::<String>::new())?;
        client.distinguished_name = name(API_SERVER_CLIENT_CN);
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        client.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        validity(&mut client, 2);
        let client_key = KeyPair::generate()?;
        let client_cert = client.signed_by(&client_key, &ca)?;

        Ok(Self {
            ca_cert: ca.pem(),
            ca_key: ca_key_pem,
            server_cert: server_cert.pem(),
            server_key: server_key.serialize_pem(),
            client_cert: client_cert.pem(),
            client_key: client_key.serialize_pem(),
            query_token: random_token()?,
        })
    }

    /// Reads the files [`Pki::write`] wrote into `dir`.
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let read = |file: &'static str| {
            let path = dir.join(file);
            match fs::read_to_string(&path) {
                Ok(text) => Ok(text),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::Incomplete {
                    dir: dir.to_owned(),
                    missing: file,
                }),
                Err(source) => Err(Error::File { path, source }),
            }
        };
        Ok(Self {
            ca_cert: read(files::CA_CERT)?,
            ca_key: read(files::CA_KEY)?,
            server_cert: read(files::SERVER_CERT)?,
            server_key: read(files::SERVER_KEY)?,
            client_cert: read(files::CLIENT_CERT)?,
            client_key: read(files::CLIENT_KEY)?,
            query_token: read(files::QUERY_TOKEN)?.trim().to_owned(),
        })
    }

    /// Writes every file into `dir` (created if needed; keys and token readable by the owner
    /// only).
    pub fn write(&self, dir: &Path) -> Result<(), Error> {
        fs::create_dir_all(dir).map_err(|source| Error::File {
            path: dir.to_owned(),
            source,
        })?;
        let entries = [
            (files::CA_CERT, &self.ca_cert, false),
            (files::CA_KEY, &self.ca_key, true),
            (files::SERVER_CERT, &self.server_cert, false),
            (files::SERVER_KEY, &self.server_key, true),
            (files::CLIENT_CERT, &self.client_cert, false),
            (files::CLIENT_KEY, &self.client_key, true),
            (files::QUERY_TOKEN, &self.query_token, true),
        ];
        for (file, text, secret) in entries {
            let path = dir.join(file);
            write_file(&path, text, secret).map_err(|source| Error::File { path, source })?;
        }
        Ok(())
    }

    /// Loads `dir` when it holds a CA certificate, else generates fresh material for
    /// `server_names` and writes it there.
    pub fn load_or_generate(dir: &Path, server_names: &[String]) -> Result<Self, Error> {
        if dir.join(files::CA_CERT).exists() {
            return Self::load(dir);
        }
        let pki = Self::generate(server_names)?;
        pki.write(dir)?;
        Ok(pki)
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "whakapapa");
    dn
}

/// 32 random bytes from the OS as lowercase hex.
fn random_token() -> Result<String, Error> {
    // ring is already our TLS crypto provider; its SystemRandom reads the OS CSPRNG.
    let mut bytes = [0u8; 32];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| Error::Random)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn write_file(path: &Path, text: &str, secret: bool) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mode = if secret { 0o600 } else { 0o644 };
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(path)?;
        file.write_all(text.as_bytes())
    }
    #[cfg(not(unix))]
    {
        let _ = secret;
        fs::write(path, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_material_loads_back_identical() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["collector.example".to_owned(), "10.96.96.96".to_owned()];
        let first = Pki::load_or_generate(dir.path(), &names).unwrap();
        let second = Pki::load_or_generate(dir.path(), &names).unwrap();
        assert_eq!(first, second);
        assert_eq!(first.query_token.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(dir.path().join(files::CLIENT_KEY))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "client key readable by others: {mode:o}");
        }
    }

    #[test]
    fn an_incomplete_directory_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        Pki::generate(&["a.example".to_owned()])
            .unwrap()
            .write(dir.path())
            .unwrap();
        fs::remove_file(dir.path().join(files::SERVER_KEY)).unwrap();
        let err = Pki::load_or_generate(dir.path(), &[]).unwrap_err();
        assert!(err.to_string().contains("tls.key is missing"), "{err}");
    }

    #[test]
    fn tokens_differ_between_generations() {
        assert_ne!(random_token().unwrap(), random_token().unwrap());
    }

    #[test]
    fn debug_output_holds_no_key() {
        let pki = Pki::generate(&["a.example".to_owned()]).unwrap();
        let debug = format!("{pki:?}");
        assert!(!debug.contains("PRIVATE KEY") && !debug.contains(&pki.query_token));
    }
}
