//! The control plane's own certificates: a cluster CA, kube-apiserver's serving certificate,
//! client certificates for the admin, kube-controller-manager and kube-scheduler, and the
//! service-account signing key — what kubeadm writes to `/etc/kubernetes/pki`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};

/// Files of the cluster PKI, all under one directory.
#[derive(Debug, Clone)]
pub struct ClusterPki {
    dir: PathBuf,
}

/// A client identity: certificate and key files.
#[derive(Debug, Clone)]
pub struct ClientCert {
    /// PEM certificate.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8).
    pub key: PathBuf,
}

impl ClusterPki {
    /// Generates every file into `dir`.
    pub fn generate(dir: &Path) -> anyhow::Result<Self> {
        fs::create_dir_all(dir)?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.distinguished_name = name("kubernetes", None);
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate()?;
        let ca_key_pem = ca_key.serialize_pem();
        let ca = CertifiedIssuer::self_signed(ca, ca_key)?;
        let pki = Self {
            dir: dir.to_owned(),
        };
        write(&pki.ca_cert(), &ca.pem())?;
        write(&pki.ca_key(), &ca_key_pem)?;

        // kube-apiserver: valid for loopback and for the names in-cluster clients use.
        let mut server = CertificateParams::new(vec![
            "localhost".to_owned(),
            "kubernetes".to_owned(),
            "kubernetes.default".to_owned(),
            "kubernetes.default.svc".to_owned(),
            "kubernetes.default.svc.cluster.local".to_owned(),
        ])?;
        server
            .subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        server
            .subject_alt_names
            .push(SanType::IpAddress([10, 96, 0, 1].into()));
        server.distinguished_name = name("kube-apiserver", None);
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate()?;
        write(
            &dir.join("apiserver.crt"),
            &server.signed_by(&key, &ca)?.pem(),
        )?;
        write(&dir.join("apiserver.key"), &key.serialize_pem())?;

        for (file, cn, org) in [
            ("admin", "kubernetes-admin", Some("system:masters")),
            ("controller-manager", "system:kube-controller-manager", None),
            ("scheduler", "system:kube-scheduler", None),
        ] {
            let mut client = CertificateParams::new(Vec::<String>::new())?;
            client.distinguished_name = name(cn, org);
            client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            let key = KeyPair::generate()?;
            write(
                &dir.join(format!("{file}.crt")),
                &client.signed_by(&key, &ca)?.pem(),
            )?;
            write(&dir.join(format!("{file}.key")), &key.serialize_pem())?;
        }

        let sa = KeyPair::generate()?;
        write(&pki.service_account_key(), &sa.serialize_pem())?;
        write(&pki.service_account_pub(), &sa.public_key_pem())?;
        Ok(pki)
    }

    /// The cluster CA certificate (`--client-ca-file`, `--root-ca-file`).
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// The cluster CA key (`--cluster-signing-key-file`).
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }

    /// kube-apiserver's serving certificate and key.
    pub fn apiserver(&self) -> ClientCert {
        ClientCert {
            cert: self.dir.join("apiserver.crt"),
            key: self.dir.join("apiserver.key"),
        }
    }

    /// A client certificate: `admin` (system:masters), `controller-manager`, `scheduler`.
    pub fn client(&self, who: &str) -> ClientCert {
        ClientCert {
            cert: self.dir.join(format!("{who}.crt")),
            key: self.dir.join(format!("{who}.key")),
        }
    }

    /// The service-account signing key (private).
    pub fn service_account_key(&self) -> PathBuf {
        self.dir.join("sa.key")
    }

    /// The service-account verification key (public).
    pub fn service_account_pub(&self) -> PathBuf {
        self.dir.join("sa.pub")
    }
}

fn name(common_name: &str, organization: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    if let Some(org) = organization {
        dn.push(DnType::OrganizationName, org);
    }
    dn
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// A kubeconfig naming `server`, the CA and a client certificate, as files.
pub fn kubeconfig(server: &str, ca: &Path, client: &ClientCert, user: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: {server}\n    \
         certificate-authority: {ca}\nusers:\n- name: {user}\n  user:\n    client-certificate: {cert}\n    \
         client-key: {key}\ncontexts:\n- name: local\n  context:\n    cluster: local\n    user: {user}\n\
         current-context: local\n",
        ca = ca.display(),
        cert = client.cert.display(),
        key = client.key.display(),
    )
}
